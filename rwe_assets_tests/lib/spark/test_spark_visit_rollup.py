"""The visit rollup on Spark (lib/spark/visits.py: lib/cdm/visits.py's SQL and checks, transpiled)
against the rollup on DuckDB: the same visits, map and counts from hand-written edge cases, one person
each (overlapping and chained stays, an EHR stay and its claim, visits sharing a day, an inpatient stay
spanning outpatient visits, ER-to-inpatient at its edges, exact duplicates, NULL ends and keys that
sort differently as text and as numbers), plus a seeded random mix. One Spark run for all of them: a
Spark job costs seconds, a row nothing. Needs the session's SparkSession (conftest.py)."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta

import duckdb
import pytest

from rwe_assets.lib.cdm.visits import StagedVisitsError, rollup_visits
from rwe_assets.lib.spark import tables
from rwe_assets.lib.spark import visits as spark_visits
from rwe_assets_tests.lib.cdm.test_visits import V, stage

CASES = {
    "overlapping stays": [
        V("ehr|a", "inpatient", "2020-03-01 08:00", "2020-03-05 12:00"),
        V("ehr|b", "inpatient", "2020-03-03 09:00", "2020-03-08 10:00"),
    ],
    "a chain judged on the running max end, and a stay two days later": [
        V("ehr|a", "inpatient", "2020-03-01 10:00", "2020-03-20 10:00"),
        V("ehr|b", "inpatient", "2020-03-02 10:00", "2020-03-03 10:00"),
        V("ehr|c", "inpatient", "2020-03-10 10:00", "2020-03-21 10:00"),
        V("ehr|d", "inpatient", "2020-03-22 23:00", None),  # touches by date: merged, NULL end
        V("ehr|e", "inpatient", "2020-03-25 09:00", "2020-03-26 09:00"),  # a whole day out: separate
    ],
    "the hospital's stay and the payer's claim for it": [
        V("ehr|enc1", "inpatient", "2020-05-10 14:30", "2020-05-14 11:00", provider="dr-x", care_site="h1"),
        V("claims|c9", "inpatient_claim", "2020-05-10", "2020-05-14", source="claims", provider="npi-1"),
    ],
    "ER then admission the same day, the next day; ER two days before; ER during the stay": [
        V("ehr|er1", "emergency", "2020-06-01 09:00", "2020-06-01 13:00", provider="dr-er"),
        V("ehr|ip1", "inpatient", "2020-06-01 13:30", "2020-06-04 10:00", provider="dr-ward"),
        V("ehr|er2", "emergency", "2020-06-02 20:00", "2020-06-02 21:00"),  # during the stay
        V("ehr|er3", "emergency", "2020-07-01 22:00", "2020-07-01 23:50"),
        V("ehr|ip3", "inpatient", "2020-07-02 01:00", "2020-07-05 10:00"),
        V("ehr|er4", "emergency", "2020-08-01 10:00", "2020-08-01 11:00"),
        V("ehr|ip4", "inpatient", "2020-08-03 10:00", "2020-08-04 10:00"),
        V("ehr|uc", "urgentcare", "2020-09-01 09:00", "2020-09-01 10:00"),  # not an ER
        V("ehr|ip5", "inpatient", "2020-09-01 12:00", "2020-09-02 10:00"),
    ],
    "an ER visit lasting days joins the first stay only; a claim of its day sorts after it": [
        V("ehr|er", "emergency", "2021-01-01 10:00", "2021-01-04 10:00"),
        V("ehr|ip1", "inpatient", "2021-01-02 10:00", "2021-01-02 12:00"),
        V("ehr|ip2", "inpatient", "2021-01-05 10:00", "2021-01-06 10:00"),
        V("pay|ip1", "inpatient_claim", "2021-01-01", "2021-01-02", source="payer"),
    ],
    "an inpatient stay spanning outpatient visits and a lab visit the same day": [
        V("ehr|ip", "inpatient", "2020-02-01 08:00", "2020-02-10 08:00"),
        V("ehr|op1", "outpatient", "2020-02-03 09:00", "2020-02-03 09:30"),
        V("ehr|op2", "ambulatory", "2020-02-03 09:00", "2020-02-03 09:45"),
        V("ehr|home", "home", "2020-02-05 09:00", None),
    ],
    "visits sharing a day: two visits, exact duplicates, another source's copy": [
        V("ehr|b", "wellness", "2020-02-01 09:00", "2020-02-01 09:30", provider="p-b"),
        V("ehr|a", "wellness", "2020-02-01 09:00", "2020-02-01 09:30", provider=None),
        V("ehr|c", "wellness", "2020-02-01 09:00", "2020-02-01 09:45"),
        V("site_b|a", "wellness", "2020-02-01 09:00", "2020-02-01 09:30", source="site_b"),
        V("x|1", "emergency", "2020-02-01 11:00", None, source=None),
        V("x|2", "emergency", "2020-02-01 11:00", None, source=None),
    ],
    "a visit alone, an end before its start, classes unmapped or NULL, keys 9 and 10": [
        V("ehr|9", "virtual", "2020-04-01 10:00", "2020-03-31 10:00"),
        V("ehr|10", "snf", "2020-04-01 10:00", "2020-04-02 10:00", care_site="snf-1"),
        V("ehr|11", "no-such-class", "2020-04-03 10:00", None, source_value="odd"),
        V("ehr|12", None, "2020-04-03 10:00", None, source_value="none"),  # type: ignore[arg-type]
        V("ehr|13", None, "2020-04-03 10:00", None, source_value="none"),  # type: ignore[arg-type]
    ],
}
CLASSES = ["inpatient", "inpatient_claim", "emergency", "wellness", "ambulatory", "urgentcare", "virtual"]


def _random_visits(count: int, seed: int, first_person: int) -> list[V]:
    """A dense mix on few persons and days, so that every rule fires (as test_visits' property test)."""
    rng, base = random.Random(seed), datetime(2022, 1, 1)
    rows = []
    for i in range(count):
        start = base + timedelta(days=rng.randint(0, 20), hours=rng.choice([0, 9, 13, 22]))
        length = rng.choice([None, 0, 1, 5, 30, 60 * 24, 60 * 24 * 3])
        end = None if length is None else (start + timedelta(minutes=length)).isoformat(sep=" ")
        person = first_person + rng.randint(0, 9)
        rows.append(
            V(
                f"r|{i}",
                rng.choice(CLASSES),
                start.isoformat(sep=" "),
                end,
                person,
                rng.choice(["ehr", "payer"]),
            )
        )
    return rows


def _staged() -> list[V]:
    rows = [
        dataclasses.replace(v, key=f"p{person}:{v.key}", person=person)
        for person, case in enumerate(CASES.values(), 1)
        for v in case
    ]
    return rows + _random_visits(240, seed=29, first_person=100)


def _sorted(arrow) -> list[tuple]:
    return sorted((tuple(row.values()) for row in arrow.to_pylist()), key=repr)


def _on_spark(spark, con, name: str):
    """The staged table of `con` as the Spark build's table visit_input, and the rollup on Spark."""
    spark_tables = tables.SparkTables(spark.newSession())
    spark_tables.put(
        "visit_input",
        spark_tables.spark.createDataFrame(con.sql(f"SELECT * FROM {name}").to_arrow_table()),
        written=False,
    )
    return spark_tables, spark_visits.rollup_visits(spark_tables, "visit_input", "rollup")


def test_the_rollup_on_spark_gives_the_visits_map_and_counts_of_duckdb(spark):
    con = duckdb.connect()
    on_duckdb = rollup_visits(con, stage(con, _staged()), "temp.main.rollup")
    spark_tables, on_spark = _on_spark(spark, con, "staged")
    assert on_spark == on_duckdb  # counts by rule, unmapped classes, and the DuckDB names of the outputs
    for table in ("rollup_visit", "rollup_visit_map"):
        duckdb_rows = _sorted(con.sql(f"SELECT * FROM {table}").to_arrow_table())
        spark_rows = _sorted(spark_tables.get(table).toArrow())
        assert spark_rows == duckdb_rows, table
    assert [f.name for f in spark_tables.get("rollup_visit").schema] == [
        d[0] for d in con.execute("DESCRIBE rollup_visit").fetchall()
    ]
    # the cases did reach every rule, on both engines
    assert all(on_duckdb.merged_rows_by_rule.values()) and on_duckdb.unmapped_class_rows == 3
    assert spark_tables.written >= {"rollup_visit", "rollup_visit_map"}  # handed to DuckDB by the build
    assert not [name for name in spark_tables.frames if "__visit_rollup_" in name]  # work tables dropped


def test_a_repeated_key_is_refused_on_spark_as_on_duckdb(spark):
    con = duckdb.connect()
    stage(con, [V("ehr|1", "wellness", "2020-01-01", None), V("ehr|1", "wellness", "2020-01-02", None)])
    with pytest.raises(StagedVisitsError, match="1 visit_key value"):
        _on_spark(spark, con, "staged")


def test_the_rollup_asks_for_its_temp_tables_as_tables_others_stay_lazy_views(spark):
    """sqlglot writes a temp table as a temporary view. A lazy view is defined again in DuckDB from its
    statement, which would read work tables the rollup has dropped since: the rollup's are tables."""
    spark_tables = tables.SparkTables(spark.newSession())
    spark_tables.run("CREATE OR REPLACE TEMP TABLE work AS SELECT 1 AS a", {}, temp_tables=True)
    spark_tables.run("CREATE OR REPLACE TEMP TABLE lazy AS SELECT a FROM work", {})
    spark_tables.run("CREATE OR REPLACE TEMP TABLE made AS SELECT a + 1 AS b FROM work", {}, temp_tables=True)
    spark_tables.run("DROP TABLE work", {})
    assert spark_tables.written == {"made"} and set(spark_tables.frames) == {"made"}
    assert set(spark_tables.views) == {"lazy"}
    assert [tuple(r) for r in spark_tables.get("made").collect()] == [(2,)]
