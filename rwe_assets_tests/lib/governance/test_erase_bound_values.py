"""Erasure's conditions over the lake name the person's values through tables bound once
(er_person, er_long_ids), never as SQL text, and still find exactly the person's rows."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from rwe_assets.lib import lake
from rwe_assets.lib.governance import erase

LONG_ID = "a9f3c2e1-77"  # a FHIR-style id, long enough to be searched inside text
SHORT_ID = "17"  # could be anyone's count or code: never searched inside text


def _con(person_id: int | None) -> duckdb.DuckDBPyConnection:
    """The temp tables _collect leaves, by hand: one record with a long and a short person-level id."""
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE er_records AS SELECT 'ehr_site_b' AS source_system, $id AS source_person_id, "
        "'ehr_site_b|' || $id AS record_id",
        {"id": LONG_ID},
    )
    con.execute(
        "CREATE TEMP TABLE er_ids AS SELECT * FROM (VALUES ($a), ($b)) t(id)", {"a": LONG_ID, "b": SHORT_ID}
    )
    con.execute("CREATE TEMP TABLE er_lines (line VARCHAR)")
    con.execute("CREATE TEMP TABLE er_keys (natural_key VARCHAR)")
    con.execute(
        "CREATE TEMP TABLE er_calls (_file_sha256 VARCHAR, record_number BIGINT, sample_index INTEGER)"
    )
    erase._value_tables(con, person_id)
    return con


def _literal_values(condition: str) -> list[str]:
    """Number literals in a condition, and string literals other than the key separators and an empty replacement (a
    subquery's `SELECT 1` aside)."""
    tree = sqlglot.condition(condition, dialect="duckdb")
    return [
        lit.sql()
        for lit in tree.find_all(exp.Literal)
        if not isinstance(lit.parent, exp.Select)
        and (lit.is_number or lit.this not in ("", "#", "|", "ppp|", "\\|[^|]*$"))
    ]


def _matched(con, path, condition: str) -> list:
    lake.register_view(con, "er_t", path)
    return sorted(r[0] for r in con.execute(f"SELECT n FROM er_t WHERE {condition}").fetchall())


def test_raw_condition_binds_the_id_length_and_searches_only_long_ids_inside_text(tmp_path):
    path = tmp_path / "raw" / "ehr_site_b" / "observation"
    rows = {
        "n": [1, 2, 3, 4],
        "_source_file": ["f"] * 4,
        "_line_number": [1, 2, 3, 4],
        "resource_type": ["Observation"] * 4,
        "resource_json": [
            f'{{"subject": {{"reference": "Patient/{LONG_ID}"}}}}',  # theirs: the long id inside
            f'{{"valueQuantity": {{"value": {SHORT_ID}}}}}',  # a short id inside: not searched
            '{"subject": {"reference": "Patient/someone-else-1"}}',
            "{}",
        ],
    }
    lake.write(path, pa.table(rows))
    con = _con(person_id=None)
    condition = erase._raw_condition(con, path, None)
    assert _literal_values(condition) == []
    assert _matched(con, path, condition) == [1]


def test_lake_condition_binds_the_person_id(tmp_path):
    path = tmp_path / "linkage" / "person_crosswalk_history"
    rows = {
        "n": [1, 2, 3, 4],
        "person_id": [42, 7, 420, None],
        "natural_key": ["x|other", "ppp|42|2024-01-01", "ppp|4|2024", f"ehr_site_b|{LONG_ID}#obs-1"],
    }
    lake.write(path, pa.table(rows))
    con = _con(person_id=42)
    condition = erase._lake_condition(con, path)
    assert _literal_values(condition) == []
    assert _matched(con, path, condition) == [1, 2, 4]


def test_without_a_person_no_person_id_matches(tmp_path):
    path = tmp_path / "linkage" / "person_crosswalk"
    lake.write(path, pa.table({"n": [1], "person_id": [42], "natural_key": ["ppp|42|2024"]}))
    con = _con(person_id=None)
    assert _matched(con, path, f"coalesce({erase._lake_condition(con, path)}, false)") == []
