"""The faster statements of staging (issue 25) give what the plain ones gave: key resolution and natural-key
numbering group keys by an integer hash first and compare exactly only where a hash is shared, so a
hash that collides everywhere must change nothing; the last source is written without a Parquet piece."""

from __future__ import annotations

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging import build, lifecycle
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.lib.staging.model import BY_NAME
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

CONTENT = ", ".join(f'"{name}"' for name, _ in BY_NAME["event"].columns)
# (source_system, record_key, batch, line, code, reason, natural): versions of keys in every shape
EVENTS = [
    ("s1", "same", "b1", 1, "A", None, False),  # re-sent unchanged: the older copy merges
    ("s1", "same", "b2", 1, "A", None, False),
    ("s1", "changed", "b1", 2, "A", None, False),  # corrected in b2: superseded
    ("s1", "changed", "b2", 2, "B", None, False),
    ("s1", "twice", "b2", 3, "A", None, False),  # two contents in one batch: DUPLICATE_ID
    ("s1", "twice", "b2", 4, "B", None, False),
    ("s2", "same", "b1", 1, "A", None, False),  # another source's key: its own record
    ("s1", None, "b1", 5, "A", None, False),  # no key twice: ranked together, as GROUP BY does
    ("s1", None, "b1", 6, "B", None, False),
    ("s1", "bad", "b1", 7, "A", "INVALID_DATE", False),  # not a version: no outcome
    ("s1", "bad", "b2", 7, "A", None, False),
    ("s1", "void", "b1", 8, "A", None, False),  # withdrawn by its latest version
    ("s1", "void", "b2", 8, "A", "ENTERED_IN_ERROR", False),
    ("s1", "nat", "b1", 9, "A", None, True),  # natural keys: 3 contents and a copy in one batch
    ("s1", "nat", "b1", 10, "B", None, True),
    ("s1", "nat", "b1", 11, "A", None, True),
    ("s1", "nat", "b1", 12, "C", None, True),
    ("s1", "nat", "b2", 9, "B", None, True),  # another batch: numbered on its own
    ("s1", "lone", "b1", 13, "A", None, True),
]


def candidates():
    con = staging_connection("256MB", 1)
    build._create_candidate_tables(con)
    con.execute(
        "CREATE TABLE batch_info AS SELECT * FROM (VALUES ('s1', 'b1', 1, false, false), "
        "('s1', 'b2', 2, false, false), ('s2', 'b1', 1, false, false)) "
        "t(source_system, _batch_id, batch_order, snapshot, staged)"
    )
    con.executemany(
        "INSERT INTO cand_event (source_system, record_key, _batch_id, _line_number, code, _reason, "
        "_natural_key, _source_file, _ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'f.csv', '2026-01-01')",
        EVENTS,
    )
    return con


def resolved(key_hash: str, monkeypatch) -> tuple[list, list]:
    """(record keys after natural-key numbering, outcomes of resolve_versions) with `key_hash`."""
    monkeypatch.setattr(lifecycle, "KEY_HASH", key_hash)
    con = candidates()
    lifecycle.number_natural_key_collisions(con, "event", CONTENT)
    lifecycle.resolve_versions(con, "event", CONTENT)
    keys = con.execute("SELECT _batch_id, _line_number, record_key FROM cand_event ORDER BY ALL").fetchall()
    outcomes = con.execute(
        "SELECT c.source_system, c.record_key, c._batch_id, c._line_number, o.outcome, o.reason "
        "FROM event_outcome o JOIN cand_event c ON c.rowid = o.row_id ORDER BY ALL"
    ).fetchall()
    return keys, outcomes


def test_key_resolution_and_numbering_give_each_rule_its_outcome(monkeypatch):
    keys, outcomes = resolved("hash({})", monkeypatch)
    assert [k for b, _, k in keys if k and k.startswith("nat") and b == "b1"] == [
        "nat",
        "nat#2",
        "nat",
        "nat#3",
    ]
    assert ("b2", 9, "nat") in keys
    assert outcomes == [  # the first in (batch desc, ingest time desc, file, line) order wins
        ("s1", "changed", "b1", 2, "merged", "SUPERSEDED"),
        ("s1", "nat", "b1", 9, "merged", "SUPERSEDED"),
        ("s1", "nat", "b1", 11, "merged", "SUPERSEDED"),
        ("s1", "same", "b1", 1, "merged", "DUPLICATE_IDENTICAL"),
        ("s1", "twice", "b2", 4, "quarantined", "DUPLICATE_ID"),
        ("s1", "void", "b1", 8, "merged", "SUPERSEDED"),
        ("s1", "void", "b2", 8, "retired", "ENTERED_IN_ERROR"),
        ("s1", None, "b1", 6, "quarantined", "DUPLICATE_ID"),
    ]


@pytest.mark.parametrize("colliding", ["0", "length(concat_ws('', {})) % 3"])
def test_a_hash_shared_by_different_keys_changes_no_outcome(monkeypatch, colliding):
    assert resolved(colliding, monkeypatch) == resolved("hash({})", monkeypatch)


def test_the_last_source_is_written_without_a_piece(tmp_path, monkeypatch):
    registry = synthea_registry("a", "b")
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    for name in ("a", "b"):
        land(
            landing,
            name,
            "b1",
            {
                "patients.csv": PATIENTS_HEADER + patient(f"{name}1"),
                "encounters.csv": ENCOUNTERS_HEADER + encounter(f"{name}e", f"{name}1"),
                "conditions.csv": CONDITIONS_HEADER
                + f"2020-01-01,,{name}1,{name}e,44054006,Diabetes\n"
                + f"not a date,,{name}1,{name}e,44054006,Diabetes\n",
            },
        )
        ingest_batch(lake_dir, landing, registry.get(name), "b1")
    pieces, held = [], []
    write_pieces, write_outputs = build._write_pieces, build._write_outputs

    def outputs(con, *args):  # DuckDB holds the last source alone when the tables are written
        held.append({s for (s,) in con.execute("SELECT DISTINCT source_system FROM cand_event").fetchall()})
        write_outputs(con, *args)

    monkeypatch.setattr(
        build, "_write_pieces", lambda con, scratch, n: pieces.append(n) or write_pieces(con, scratch, n)
    )
    monkeypatch.setattr(build, "_write_outputs", outputs)
    report = build_staging(lake_dir, registry, scratch_dir=tmp_path / "scratch")
    assert pieces == [0] and held == [{"b"}]

    def rows(name: str) -> list:
        table = lake.read_table(lake.table_path(lake_dir, "staging", name))
        return sorted(table.select(["source_system"]).to_pylist(), key=str)

    assert rows("event") == [{"source_system": "a"}, {"source_system": "b"}]
    assert rows("_quarantine") == [{"source_system": "a"}, {"source_system": "b"}]
    assert all(r.unaccounted == 0 for r in report.reconciliation)
