"""DQD checks that read a vocabulary table next to the CDM must not scan all of it: at Athena size
(10M CONCEPT_ANCESTOR rows) a full scan per check is what made DQD grow with the vocabulary."""

from __future__ import annotations

import json

import duckdb
import pytest

from rwe_assets.lib.quality.dqd import load_template

ANCESTOR_ROWS = 1_000_000  # about 8 row groups: enough for the scan to skip most of them
MALE, FEMALE = 8507, 8532


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE concept_ancestor AS SELECT (i // 4)::BIGINT AS ancestor_concept_id, "
        f"i::BIGINT AS descendant_concept_id FROM range({ANCESTOR_ROWS}) AS t(i)"
    )
    con.execute(
        f"CREATE TABLE person AS SELECT * FROM (VALUES (1, {FEMALE}), (2, {MALE})) AS p(person_id, gender_concept_id)"
    )
    # concept 10 and its descendants 40..43 are male-only; 41 in a woman is the one violation
    con.execute(
        "CREATE TABLE condition AS SELECT * FROM (VALUES (1, 41), (2, 42), (1, 10), (1, 99)) AS c(person_id, concept)"
    )
    yield con
    con.close()


def _profiled(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> tuple[tuple, list[int]]:
    """The query's row and the rows each table scan read (after zone-map pruning)."""
    con.execute("PRAGMA enable_profiling = 'no_output'")
    con.execute("""SET custom_profiling_settings = '{"OPERATOR_ROWS_SCANNED": "true"}'""")
    row = con.execute(sql, params).fetchone()
    scanned: list[int] = []

    def walk(node: dict) -> None:
        if node.get("operator_type") == "TABLE_SCAN":
            scanned.append(int(node["operator_rows_scanned"]))
        for child in node.get("children", []):
            walk(child)

    walk(json.loads(con.get_profiling_information(format="json")))
    con.execute("PRAGMA disable_profiling")
    return row, scanned


def test_gender_use_descendants_probes_only_the_listed_ancestors(con):
    sql = load_template("plausibleGenderUseDescendants").format(
        table="condition", person="person", field="concept", concept_ancestor="concept_ancestor"
    )
    params = {"known_genders": [MALE, FEMALE], "gender_concept_id": MALE, "concept_ids": [10]}
    row, scanned = _profiled(con, sql, params)
    assert row == (2, 3)  # persons 1 (41, 10) violate; 42 counts; 99 is not a descendant
    # list_contains(ancestor) per row read all 1M rows; the semi-join skips the row groups without 10
    assert max(scanned) < ANCESTOR_ROWS / 4
