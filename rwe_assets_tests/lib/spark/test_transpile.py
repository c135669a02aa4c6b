"""The CDM SQL transpiled from DuckDB's dialect to Spark's (lib/spark/transpile.py), without Spark."""

from __future__ import annotations

import pytest
import sqlglot

from rwe_assets.lib.cdm import sql
from rwe_assets.lib.spark import transpile as tr

# One case per construct of NON_PORTABLE: a DuckDB statement holding it, and either the text its Spark
# version must hold (an automatic rewrite) or None (the statement must be reported for a hand rewrite).
CASES = {
    "cast_shorthand": ("SELECT d::DATE AS d FROM t", "CAST(d AS DATE)"),
    "parameter": ("SELECT $type_ehr AS c", ":type_ehr"),
    "qualify": ("SELECT a FROM t QUALIFY row_number() OVER (PARTITION BY a ORDER BY b) = 1", "WHERE _w = 1"),
    "arg_min": ("SELECT arg_min(a, b) AS a FROM t", "MIN_BY(a, b)"),
    "struct_literal": ("SELECT {'y': a} AS s FROM t", "STRUCT(a AS y)"),
    "list_and_lambda": (
        "SELECT list_transform([1, 2], x -> x + 1) AS l",
        "TRANSFORM(ARRAY(1, 2), x -> x + 1)",
    ),
    "series": ("SELECT unnest(generate_series(a, b, INTERVAL 1 DAY)) AS d FROM t", "EXPLODE(SEQUENCE(a, b"),
    "string_agg_order": ("SELECT string_agg(a, ',' ORDER BY b) AS s FROM t", "WITHIN GROUP (ORDER BY b"),
    "regexp_full_match": ("SELECT regexp_full_match(z, '[0-9]{4}') AS ok FROM t", "z RLIKE '^(?:[0-9]{4})$'"),
    "temp_table": (
        "CREATE OR REPLACE TEMP TABLE w AS SELECT 1 AS a",
        "CREATE OR REPLACE TEMPORARY VIEW w AS",
    ),
    "exclude": ("SELECT * EXCLUDE (a) FROM t", "* EXCEPT (a)"),
    "cast_of_unnest": (
        "SELECT unnest(generate_series(a, b, INTERVAL 1 MONTH))::DATE AS m FROM t",
        "EXPLODE(CAST(SEQUENCE(a, b, INTERVAL '1' MONTH) AS ARRAY<DATE>)) AS m",
    ),
    "subquery_in_values": (
        "SELECT * FROM (VALUES ('a', (SELECT max(c) FROM u))) t(x, y)",
        "(SELECT 'a' AS x, (SELECT MAX(c) FROM u) AS y) AS t",
    ),
    "star_replace": ("SELECT t.* REPLACE (a + 1 AS a) FROM t", "SELECT t.* EXCEPT (a), a + 1 AS a FROM t"),
    "asof_join": ("SELECT * FROM t ASOF LEFT JOIN u ON t.k = u.k AND t.d >= u.d", None),
    "rowid": ("SELECT rowid AS r FROM t", None),
    "duckdb_hash": ("SELECT hash(a, b) AS h FROM t", "XXHASH64(a, b) AS h"),
    "arg_min_null": ("SELECT arg_min_null(a, (b, c)) AS a FROM t", "MIN_BY(a, (b, c)) AS a"),
    "date_difference": ("SELECT end_date - start_date AS days FROM t", None),
    "delete": ("DELETE FROM cdm.t WHERE a = 1", None),
    "update_from": ("UPDATE cdm.t AS e SET a = u.a FROM u WHERE e.k = u.k", None),
    "temp_table_ddl": ("CREATE OR REPLACE TEMP TABLE t (a VARCHAR, b INTEGER[])", None),
    "union_by_name": ("SELECT 1 AS a, 2 AS b UNION ALL BY NAME SELECT 3 AS b, 4 AS a", None),
    "macro": ("CREATE MACRO plus_one(x) AS x + 1", None),
    "unknown_function": ("SELECT no_such_fn(a) AS b FROM t", None),
}


def test_every_non_portable_construct_has_a_case():
    assert set(CASES) == set(tr.CONSTRUCTS)
    for name, (_, expected) in CASES.items():
        assert (expected is not None) == tr.CONSTRUCTS[name].automatic, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_construct_is_rewritten_or_reported(name):
    statement, expected = CASES[name]
    result = tr.transpile(statement)
    if expected is None:
        assert any(issue.split(":")[0] == name for issue in result.issues), result
    else:
        assert expected in result.spark, result.spark
        assert result.issues == ()


@pytest.mark.parametrize("name", tr.cdm_files())
def test_every_cdm_file_transpiles(name):
    """Rendered with dummy identifiers, every statement parses as DuckDB and is written as Spark SQL
    that sqlglot reads back; its $parameters survive as :markers."""
    by_section = tr.transpile_file(name, tr.dummy_fill(name))
    statements = [t for section in by_section.values() for t in section]
    assert statements
    for result in statements:
        sqlglot.parse_one(result.spark, read="spark")
        assert "{" + "schema}" not in result.spark
        for parameter in result.parameters:
            assert f"${parameter}" in result.duckdb and f":{parameter}" in result.spark


def test_values_become_literals():
    bound = tr.transpile(
        "SELECT $type_ehr AS c, $flag AS f, $label AS l", {**sql.PARAMETERS, "flag": True, "label": "a'b"}
    )
    assert bound.spark == f"SELECT {sql.PARAMETERS['type_ehr']} AS c, TRUE AS f, 'a\\'b' AS l"
    with pytest.raises(KeyError, match=r"\$missing"):
        tr.transpile("SELECT $missing", {})


def test_report_names_the_files_that_need_hand_rewrites():
    """The report covers every file; a statement with a hand rewrite shows up under its file."""
    found = tr.report()
    assert set(found) == set(tr.cdm_files())
    assert "update_from" in found["drug_end_at_death"] and found["payer_plan_period"] == {}
    assert found["location_input"] == {}  # runs on Spark as transpiled (test_spark_delta_bridge)


def test_placeholders_in_comments_and_sections_are_not_filled():
    assert "score" not in tr.placeholders("unit_map")  # '{score}' appears only in a comment
    assert "drug_ingredient" not in tr.placeholders("drug_era")  # a section of the file
