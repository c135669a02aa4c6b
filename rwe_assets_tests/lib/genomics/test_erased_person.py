"""Genomics staging refuses an erased person's specimens and calls, as staging refuses their records:
a sample manifest row whose person a tombstone names (directly, or learned when staging refused the
person sent again under a new id) is quarantined as ERASED_PERSON, without the sample name."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import SOURCE_SYSTEM, reconcile, stage_genomics
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets_tests.lib.genomics.conftest import land_lab, manifest
from rwe_assets_tests.lib.genomics.test_sample_identity import FILE_A

KEY = "tombstone-test-key-0123456789abcdef"


def _tombstone(lake_dir, records: list[dict]) -> None:
    con = duckdb.connect()
    tombstone.register(con, KEY)
    con.register("erased", pa.Table.from_pylist(records))
    tombstone.add(lake_dir, con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table(), "e1")


def _table(lake_dir, name: str) -> list[dict]:
    return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()


def _stage(dirs, lab, monkeypatch):
    lake_dir, landing = dirs
    monkeypatch.setenv("RWE_TOMBSTONE_KEY", KEY)
    rows = [("NA00001", "P1", "GRCh38", "a.vcf"), ("NA00002", "P2", "GRCh38", "a.vcf")]
    land_lab(landing, "b1", {"a.vcf": FILE_A, "sample_manifest.csv": manifest(rows)})
    ingest_batch(lake_dir, landing, lab, "b1")
    report = stage_genomics(lake_dir)
    assert all(raw == staged + quarantined for _, raw, staged, quarantined in reconcile(lake_dir))
    return report


def test_an_erased_persons_specimen_and_calls_are_quarantined_without_the_sample_name(dirs, lab, monkeypatch):
    _tombstone(dirs[0], [{"source_system": SOURCE_SYSTEM, "source_person_id": "P2"}])
    report = _stage(dirs, lab, monkeypatch)
    assert {s["source_person_id"] for s in _table(dirs[0], "specimen")} == {"P1"}
    assert {v["source_person_id"] for v in _table(dirs[0], "variant")} == {"P1"}
    refused = [r for r in _table(dirs[0], "specimen_quarantine") if r["reason_code"] == tombstone.REASON]
    calls = [r for r in _table(dirs[0], "variant_quarantine") if r["reason_code"] == tombstone.REASON]
    assert len(refused) == 1 and len(calls) == 1  # P2's one non-reference call (NA00002 1/1 at 200)
    assert all(r["sample_id"] is None for r in refused + calls)
    assert "NA00002" not in str(refused + calls) and "P2" not in str(refused + calls)
    assert report.quarantine_reasons[tombstone.REASON] == 2


def test_without_tombstones_every_specimen_stages(dirs, lab, monkeypatch):
    _stage(dirs, lab, monkeypatch)
    assert {s["source_person_id"] for s in _table(dirs[0], "specimen")} == {"P1", "P2"}


def test_a_record_refused_for_its_identity_is_remembered_by_its_own_record_tombstone(tmp_path):
    """Staging refuses an erased person sent again under a new id by name and birth date; the new id
    then gets a 'record' tombstone, which layers holding only the id (a sample manifest) match."""
    lake_dir = tmp_path / "lake"
    person = {"given_name": "Ann", "family_name": "Lee", "birth_date": "1970-02-03"}
    _tombstone(lake_dir, [{"source_system": "lab", "source_person_id": "old", **person}])
    con = duckdb.connect()
    con.register(
        "sent_again", pa.Table.from_pylist([{"source_system": "lab", "source_person_id": "new", **person}])
    )
    assert tombstone.register_refused(con, lake_dir, "sent_again", "refused", KEY) == 1
    con.register("by_id", pa.Table.from_pylist([{"source_system": "lab", "source_person_id": "new"}]))
    assert tombstone.register_refused(con, lake_dir, "by_id", "refused_by_id", KEY) == 1
    held = lake.read_table(tombstone.tombstone_path(lake_dir)).to_pylist()
    assert {r["erasure_id"] for r in held} == {"e1"}  # the learned tombstone keeps its erasure's id
