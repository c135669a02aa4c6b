"""Delta tables through local Spark without delta-spark jars (lib/spark/io.py), and a CDM SQL file run on
Spark against DuckDB's result, on the session's SparkSession (conftest.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm import sql
from rwe_assets.lib.cdm.inputs import US_STATES
from rwe_assets.lib.spark import io
from rwe_assets.lib.spark import transpile as tr


def _typed_rows() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "name": pa.array(["a", None, "é'x"], pa.string()),
            "day": pa.array([dt.date(2020, 2, 29), None, dt.date(1899, 12, 31)], pa.date32()),
            "at": pa.array(
                [dt.datetime(2020, 1, 1, 23, 59, 59, 123456), None, dt.datetime(1970, 1, 1)],
                pa.timestamp("us"),
            ),
            "amount": pa.array([Decimal("1.50"), None, Decimal("-99999999.99")], pa.decimal128(10, 2)),
        }
    )


def _sorted(rows: list[dict]) -> list[tuple]:
    return sorted((tuple(row.items()) for row in rows), key=repr)


def test_delta_round_trip_keeps_rows_and_types(spark, tmp_path):
    source, target = tmp_path / "lake" / "source", tmp_path / "lake" / "target"
    lake.write(source, _typed_rows())
    written = io.write_delta(io.read_delta(spark, source), target, tmp_path / "scratch")
    back = lake.read_table(target)
    assert written == 3
    assert back.schema == _typed_rows().schema
    assert _sorted(back.to_pylist()) == _sorted(_typed_rows().to_pylist())
    assert not any((tmp_path / "scratch").iterdir())  # Spark's staged Parquet is gone


def test_read_takes_live_files_only_and_the_delta_schema(spark, tmp_path):
    """An overwritten file stays on disk but is not read; a column added later reads as null in rows
    written before it."""
    path = tmp_path / "lake" / "evolving"
    lake.write(path, pa.table({"id": pa.array([1, 2], pa.int64())}))
    lake.write(path, pa.table({"id": pa.array([3], pa.int64())}), mode="overwrite")
    lake.append(path, pa.table({"id": pa.array([4], pa.int64()), "extra": ["x"]}))
    rows = io.read_delta(spark, path).orderBy("id").collect()
    assert [tuple(row) for row in rows] == [(3, None), (4, "x")]
    assert len(list(path.glob("*.parquet"))) == 3


def test_missing_table_is_an_error(spark, tmp_path):
    with pytest.raises(FileNotFoundError):
        io.read_delta(spark, tmp_path / "nothing")


PERSONS = {
    "city": ["Boston", "Lowell", None, "London", "Springfield", "boston"],
    "state": ["Massachusetts", "MA", None, None, "il", "MA"],
    "zip": ["02108-4623", "1850", None, "SW1A 1AA", "627011234567", " 02108 "],
    "county": ["Suffolk County", None, None, None, "Sangamon", "Suffolk County"],
}
CARE_SITES = {"city": ["Lowell", "Chicago"], "state": ["MA", "Illinois"], "zip": ["1850", "60601 1234"]}


def test_location_input_on_spark_matches_duckdb(spark, tmp_path):
    """lib/sql/cdm/location_input.sql (ZIP rules, state names, a regexp_full_match Spark has no name
    for) on the same staged Delta tables: Spark's rows, committed to Delta, equal DuckDB's."""
    staged = {
        "stg_person_source": pa.table(PERSONS),
        "stg_care_site": pa.table(CARE_SITES),
    }
    for name, rows in staged.items():
        lake.write(tmp_path / "lake" / name, rows)
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE us_state AS SELECT * FROM (VALUES ('', '')) AS t(code, name) LIMIT 0")
    con.executemany("INSERT INTO us_state VALUES (?, ?)", sorted(US_STATES.items()))
    for name in staged:
        lake.register_view(con, name, tmp_path / "lake" / name)
    sql.run(con, "location_input")
    expected = con.sql("SELECT * FROM location_input").to_arrow_table()

    for name in staged:
        io.read_delta(spark, tmp_path / "lake" / name).createOrReplaceTempView(name)
    spark.createDataFrame(sorted(US_STATES.items()), "code string, name string").createOrReplaceTempView(
        "us_state"
    )
    (statement,) = tr.transpile_file("location_input", values=sql.PARAMETERS)[None]
    assert statement.issues == ()
    spark.sql(statement.spark)
    io.write_delta(spark.table("location_input"), tmp_path / "lake" / "location_input", tmp_path / "scratch")
    actual = lake.read_table(tmp_path / "lake" / "location_input")

    assert actual.num_rows == expected.num_rows == 6  # Lowell, MA comes from a person and a care site
    assert _sorted(actual.to_pylist()) == _sorted(expected.to_pylist())
    assert {"021084623", "01850", "SW1A 1AA", None} <= {row["zip"] for row in actual.to_pylist()}


def test_every_statement_spark_rejects_is_in_the_report(spark):
    """Spark's parser and function list against every transpiled CDM statement: what Spark rejects is
    a statement the transpile report already flags for a hand rewrite, never a surprise."""
    functions = tr.spark_functions(spark)
    values = _AnyValue(sql.PARAMETERS)
    surprises, rejected = [], 0
    for name in tr.cdm_files():
        for section, statements in tr.transpile_file(name, tr.dummy_fill(name), values).items():
            for number, result in enumerate(statements):
                problems = tr.spark_check(spark, result, functions)
                rejected += bool(problems)
                if problems and not result.issues:
                    surprises.append((name, section, number, problems))
    assert surprises == []
    assert rejected >= 1  # the check does see rejections (UPDATE ... FROM, ASOF, * REPLACE)
    assert tr.spark_check(spark, tr.transpile("SELECT no_such_fn(1) AS x"), functions) == [
        "spark function unknown: no_such_fn"
    ]


class _AnyValue(dict):
    """The project's named values, and 0 for a value a caller supplies (a window in days, a flag)."""

    def __missing__(self, key):
        return 0
