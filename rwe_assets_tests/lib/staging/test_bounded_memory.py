"""Staging one source at a time (lib/staging/build.py, "Memory"): DuckDB holds one source's rows, a
source stages the same rows whatever else is staged beside it, and the scratch dir holding the pieces
(PII) is owner-only and gone afterwards."""

from __future__ import annotations

import os
import stat

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.staging import build
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.model import TABLES
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

OUTPUTS = [*(t.name for t in TABLES), build.QUARANTINE, build.MERGED, build.RETIRED]
# Source a: p1 twice (a differing copy in one batch), an encounter of a person it never sent.
SITE_A = {
    "patients.csv": PATIENTS_HEADER + patient("p1") + patient("p1", last="Lea") + patient("p2"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1") + encounter("e2", "p3"),
    "conditions.csv": CONDITIONS_HEADER + "2020-01-01,,p1,e1,44054006,Diabetes\n",
}
# Source b has the same ids for other people: p3 is its own, e1 its own encounter, nothing is shared.
SITE_B = {
    "patients.csv": PATIENTS_HEADER + patient("p3") + patient("p1", first="Bob"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p3") + encounter("e9", "p2"),
    "conditions.csv": CONDITIONS_HEADER
    + "2020-01-01,,p3,e1,44054006,Diabetes\n"
    + "2020-01-01,,p3,e7,44054006,Diabetes\n",
}


def two_sites():
    return synthea_registry("site_a", "site_b")


def land_and_ingest(lake_dir, landing, registry):
    for source, files in (("site_a", SITE_A), ("site_b", SITE_B)):
        if source in registry.names:
            land(landing, source, "b1", files)
            ingest_batch(lake_dir, landing, registry.get(source), "b1")


def rows(lake_dir, name, source):
    table = lake.read_table(lake.table_path(lake_dir, "staging", name))
    kept = [c for c in table.column_names if c != "_ingested_at"]  # the ingest time differs per lake
    picked = [r for r in table.select(kept).to_pylist() if r["source_system"] == source]
    return sorted(picked, key=repr)


def test_a_source_stages_the_same_rows_alone_or_beside_another(tmp_path):
    both = two_sites()
    land_and_ingest(tmp_path / "both", tmp_path / "landing_both", both)
    report = build_staging(tmp_path / "both", both)
    for name in ("site_a", "site_b"):
        alone = SourceRegistry((both.get(name),))
        land_and_ingest(tmp_path / name, tmp_path / f"landing_{name}", alone)
        build_staging(tmp_path / name, alone)
        for output in OUTPUTS:
            assert rows(tmp_path / "both", output, name) == rows(tmp_path / name, output, name), output
    # references and keys stay within a source: b's e1 and p3 are its own, a's e2 (p3) is an orphan
    reasons = report.quarantine_reasons
    assert reasons[("visit", "ORPHAN_PERSON")] == 2  # a's e2 (p3 only in b), b's e9 (p2 only in a)
    assert reasons[("event", "MISSING_VISIT")] == 1  # b's condition on e7
    assert reasons[("person_pii", "DUPLICATE_ID")] == 1  # a's second p1 (a new name), not b's p1
    assert all(r.unaccounted == 0 for r in report.reconciliation)


def test_duckdb_holds_one_source_at_a_time_in_an_owner_only_scratch_dir(tmp_path, monkeypatch):
    registry = two_sites()
    lake_dir = tmp_path / "lake"
    land_and_ingest(lake_dir, tmp_path / "landing", registry)
    scratch = tmp_path / "scratch"
    (scratch / "spill").mkdir(parents=True)
    (scratch / "spill" / "killed_build.tmp").write_text("left by a killed build")
    seen = []
    write_pieces = build._write_pieces

    def spy(con, folder, number):
        held = {
            source
            for table in TABLES
            for (source,) in con.execute(f"SELECT DISTINCT source_system FROM cand_{table.name}").fetchall()
        }
        seen.append((held, stat.S_IMODE(folder.stat().st_mode), (folder / "spill").exists()))
        write_pieces(con, folder, number)

    monkeypatch.setattr(build, "_write_pieces", spy)
    umask = os.umask(0o022)  # a common umask: a folder made with the default mode would be world-readable
    try:
        report = build_staging(lake_dir, registry, scratch_dir=scratch)
    finally:
        os.umask(umask)
    assert [held for held, _, _ in seen] == [{"site_a"}]  # the last source (site_b) writes no piece
    assert {(mode, leftover) for _, mode, leftover in seen} == {(0o700, False)}  # the old spill went
    assert not scratch.exists()
    assert report.row_counts["person_source"] == 4


def test_scratch_dir_is_removed_when_a_build_fails(tmp_path, monkeypatch):
    registry = two_sites()
    lake_dir = tmp_path / "lake"
    land_and_ingest(lake_dir, tmp_path / "landing", registry)

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "_write_outputs", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_staging(lake_dir, registry)
    assert not (lake_dir / "_work" / "staging").exists()
    assert not lake.exists(lake.table_path(lake_dir, "staging", "person_source"))


def test_no_staged_source_still_writes_every_table_empty_with_its_columns(tmp_path):
    report = build_staging(tmp_path / "lake", SourceRegistry(()))
    for table in TABLES:
        written = lake.read_table(lake.table_path(tmp_path / "lake", "staging", table.name))
        assert written.num_rows == 0 and written.column_names == table.column_names
    assert report.row_counts == {t.name: 0 for t in TABLES} and report.reconciliation == []
