"""The CDM build with its SQL on Spark (lib/spark/build.py) builds the CDM the DuckDB build builds, by
the comparison tool, on the bundled samples; its CDM tables land in the lake as Delta too.

The build test and the INSERT test use the session's SparkSession (conftest.py: skipped without Java
or pyspark, failed in CI); the build test is marked slow, so it starts first (minutes of wall on a
loaded machine: Spark pays a job per statement; docs/operations.md, "The CDM build on Spark"). The
others need no JVM."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot
from sqlglot import exp

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import sql
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.cdm.steps import STEPS, Call
from rwe_assets.lib.spark import build as spark_build
from rwe_assets.lib.spark import transpile as tr
from rwe_assets.settings import REPO_DIR, Settings


def test_a_values_list_holding_a_subquery_becomes_a_union_spark_accepts():
    # mapped_event.sql's status map: Spark refuses a scalar subquery inside VALUES (an analysis error
    # its parser does not raise, so spark_check cannot see it)
    (statement,) = [s for s in sql.statements(sql.render("mapped_event")) if "status_map AS" in s]
    tree = sqlglot.parse_one(tr.transpile(statement, sql.PARAMETERS).spark, read="spark")
    assert not [v for v in tree.find_all(exp.Values) if v.find(exp.Subquery)]
    status_map = next(cte for cte in tree.find_all(exp.CTE) if cte.alias == "status_map")
    union = status_map.find(exp.Union)
    assert union is not None and union.named_selects == ["condition_status", "concept_id"]


def test_steps_in_python_run_on_duckdb_and_sql_steps_on_spark():
    on_spark = set(spark_build.steps_on_spark())
    python_steps = {s.name for s in STEPS if any(isinstance(a, Call) for a in s.actions)}
    # those with a Spark variant, and the visit rollup's step (its SQL transpiled: SPARK_CALLS)
    assert python_steps & on_spark == set(spark_build.CALL_VALUES) | {"visit_occurrence"}
    # payer_plan_period by the transpiler's * REPLACE rewrite, drug_end_at_death by its Spark variant
    assert {"person", "mapped_event", "note", "cost", "payer_plan_period", "drug_end_at_death"} <= on_spark
    assert tr.report()["drug_end_at_death"] == {"update_from": 1}


def test_a_spark_variant_makes_tables_spark_parses():
    """Tables made, dropped, or counted (a count is logged: only variants with a count message)."""
    for name in spark_build.variants():
        text = (spark_build.VARIANT_DIR / f"{name}.sql").read_text()
        for statement in sql.statements(text):
            tree = sqlglot.parse_one(statement, read="spark")
            assert isinstance(tree, (exp.Create, exp.Insert, exp.Drop, exp.Select)), (name, statement)
            assert tree.find(exp.Table), (name, statement)
            if isinstance(tree, exp.Select):
                assert name in spark_build.VARIANT_COUNTS and tree.find(exp.Count), (name, statement)


def test_the_engine_setting_is_read_and_checked(tmp_path):
    assert Settings.from_env({"RWE_DATA_DIR": str(tmp_path)}).cdm_engine == "duckdb"
    assert (
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_CDM_ENGINE": " Spark "}).cdm_engine == "spark"
    )
    with pytest.raises(ConfigError, match="RWE_CDM_ENGINE: expected one of duckdb, spark"):
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_CDM_ENGINE": "polars"})


def test_an_unknown_engine_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected one of duckdb, spark"):
        cdm_build.build_cdm(tmp_path / "lake", REPO_DIR / "vocab", tmp_path / "warehouse", engine="polars")


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory):
    """The bundled Synthea CSV and FHIR samples landed, staged and linked."""
    from rwe_assets.cli.demo import land_sample
    from rwe_assets_tests.crash_harness import stage_and_link

    data_dir = tmp_path_factory.mktemp("sample")
    land_sample(Settings.from_env({}, data_dir=data_dir, vocab_dir=REPO_DIR / "vocab"))
    stage_and_link(data_dir)
    return data_dir / "lake"


@pytest.mark.slow
def test_the_spark_engine_builds_the_cdm_of_the_duckdb_engine(spark, sample_lake, tmp_path):
    on_duckdb = cdm_build.build_cdm(
        sample_lake, REPO_DIR / "vocab", tmp_path / "duckdb", reuse_unchanged=False
    )
    lines: list[str] = []
    on_spark = cdm_build.build_cdm(
        sample_lake,
        REPO_DIR / "vocab",
        tmp_path / "spark",
        reuse_unchanged=False,
        engine="spark",
        log=lines.append,
    )
    comparison = compare_cdms(on_duckdb.path, on_spark.path)
    assert comparison.same, format_comparison(comparison)
    assert comparison.table("person").rows_a == 40 and comparison.table("cost").rows_a > 0
    ran = spark_build.engines_of(lines)
    assert [name for name, engine in ran.items() if engine == "spark"] == spark_build.steps_on_spark()
    assert len(ran) == len(STEPS)
    for table, rows in on_spark.row_counts.items():  # the lake's Delta copy is the published CDM
        delta = lake.read_table(lake.table_path(sample_lake, "cdm", table))
        assert delta is not None and delta.num_rows == rows, table


@pytest.mark.slow
def test_an_insert_casts_to_the_target_and_refuses_a_column_it_lacks(spark):
    from rwe_assets.lib.spark.tables import append

    target = spark.sql(
        "SELECT CAST(1 AS INT) AS person_id, CAST('a' AS STRING) AS code, DATE'2020-01-31' AS day"
    )
    rows = spark.sql("SELECT CAST(2 AS BIGINT) AS person_id, DATE'2021-02-28' AS day")
    merged = append(target, rows)
    assert [(f.name, f.dataType) for f in merged.schema] == [(f.name, f.dataType) for f in target.schema]
    assert sorted(tuple(r) for r in merged.collect())[1] == (2, None, dt.date(2021, 2, 28))
    with pytest.raises(ValueError, match="no column extra"):
        append(target, spark.sql("SELECT 3 AS person_id, 'x' AS extra"))
