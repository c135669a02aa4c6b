"""The id maps' key queries run on the Spark engine as the DuckDB engine runs them: a quoted name stays a
column (Spark SQL reads "name" as a string), and a bound value becomes its literal. No Spark needed."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from rwe_assets.lib.cdm.steps import STEPS, Ids
from rwe_assets.lib.spark.build import spark_key_query

ID_ACTIONS = [a for step in STEPS for a in step.actions if isinstance(a, Ids)]


def _strings(spark_sql: str) -> set[str]:
    tree = sqlglot.parse_one(spark_sql, read="spark")
    return {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}


def test_quoted_key_columns_stay_columns_on_spark():
    keyed = [a for a in ID_ACTIONS if a.table in ("care_site", "provider", "note", "cost")]
    assert len(keyed) == 4
    for action in keyed:
        spark_sql = spark_key_query(action)
        assert _strings(spark_sql) == {"|"}, spark_sql  # the key's separator, nothing named as text
        columns = {c.name for c in sqlglot.parse_one(spark_sql, read="spark").find_all(exp.Column)}
        assert columns >= {"source_system"} and len(columns) == 2, spark_sql


def test_a_bound_value_becomes_its_literal_on_spark():
    measurement = next(a for a in ID_ACTIONS if a.table == "measurement")
    spark_sql = spark_key_query(measurement)
    assert "$" not in spark_sql and _strings(spark_sql) == {"measurement"}


def test_reading_the_duckdb_text_as_spark_would_name_the_column_as_text():
    """Why the query is transpiled, not read as Spark SQL: the trap this guards against."""
    care_site = next(a for a in ID_ACTIONS if a.table == "care_site")
    as_spark = sqlglot.parse_one(care_site.query, read="spark").sql("spark")
    assert "care_site_key" in _strings(as_spark)
