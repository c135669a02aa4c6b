"""A FHIR bulk export's `deleted` files (lib/raw_ingest/bulk_export.py): named by the manifest, their
DELETE entries retire the records they name through the Bundle DELETE path (DELETED, counted), in a
full build and run by run alike; what is no DELETE is quarantined; the manifest itself holds no rows.

Fixtures: rwe_assets_tests/data/bulk_deleted/ (README there)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import Status, ingest_batch
from rwe_assets.lib.staging import incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.test_fhir_bundles import by_name, raw_quarantine

DATA = Path(__file__).parent.parent / "data" / "bulk_deleted"


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


def _batch(name: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((DATA / name).iterdir())}


def _conditions(lake_dir) -> list[str]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    return sorted(r["record_key"] for r in rows)


def _retired(lake_dir) -> Counter:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "_retired")).to_pylist()
    return Counter((r["record_key"], r["reason_code"]) for r in rows)


def _ingest_both(tmp_path, second: dict[str, str]):
    registry, lake_dir, landing = fhir_registry(), tmp_path / "lake", tmp_path / "landing"
    reports = []
    for batch, files in (("b1", _batch("b1")), ("b2", second)):
        land(landing, "site", batch, files)
        reports.append(ingest_batch(lake_dir, landing, registry.get("site"), batch))
    return registry, lake_dir, reports


def test_the_deleted_file_retires_what_it_names_and_quarantines_the_rest(tmp_path):
    registry, lake_dir, reports = _ingest_both(tmp_path, _batch("b2"))
    files = by_name(reports[1])
    deleted, manifest = files["del_1.ndjson"], files["manifest.json"]
    assert deleted.status == Status.INGESTED and deleted.reconciles
    assert (deleted.lines_read, deleted.records_read, deleted.rows_stored) == (4, 5, {"condition": 2})
    assert (manifest.status, manifest.total_stored, manifest.warnings) == (Status.INGESTED, 0, [])
    bad = [
        (r["_line_number"], r["reason_code"])
        for r in raw_quarantine(lake_dir)
        if "del_1" in r["_source_file"]
    ]
    assert bad == [
        (3, "BUNDLE_DELETE_UNRESOLVED"),
        (4, "BULK_DELETED_NOT_A_DELETE"),
        (5, "BULK_DELETED_NOT_A_BUNDLE"),
    ]
    report = build_staging(lake_dir, registry)
    assert _conditions(lake_dir) == ["Condition/c3", "Condition/c4"]
    assert _retired(lake_dir) == Counter({("Condition/c1", "DELETED"): 1, ("Condition/c2", "DELETED"): 1})
    assert report.retired_reasons == {("event", "DELETED"): 2}
    assert all(r.unaccounted == 0 for r in report.reconciliation)


def test_staged_run_by_run_the_deletions_equal_a_full_build(tmp_path):
    registry = fhir_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [_batch("b1"), _batch("b2")])
    assert [r.mode for r in reports] == ["full", "incremental"]
    assert _conditions(lake_dir) == ["Condition/c3", "Condition/c4"]
    assert _retired(lake_dir) == Counter({("Condition/c1", "DELETED"): 1, ("Condition/c2", "DELETED"): 1})
    assert_equals_full_build(lake_dir, registry)


def test_without_the_manifest_a_file_of_bundles_is_refused_and_nothing_deleted(tmp_path):
    second = {k: v for k, v in _batch("b2").items() if k != "manifest.json"}
    registry, lake_dir, reports = _ingest_both(tmp_path, second)
    assert by_name(reports[1])["del_1.ndjson"].status == Status.FAILED
    build_staging(lake_dir, registry)
    assert _conditions(lake_dir) == ["Condition/c1", "Condition/c2", "Condition/c3", "Condition/c4"]


def test_a_manifest_naming_files_the_batch_lacks_says_so(tmp_path):
    manifest = json.loads(_batch("b2")["manifest.json"])
    manifest["deleted"].append({"type": "Bundle", "url": "https://ehr.example.org/bulk/9a2e/del_2.ndjson"})
    second = _batch("b2") | {"manifest.json": json.dumps(manifest)}
    _, _, reports = _ingest_both(tmp_path, second)
    (warning,) = by_name(reports[1])["manifest.json"].warnings
    assert "1 of its 2 deleted files are not in this batch (del_2.ndjson)" in warning


def test_lines_that_are_no_deletion_are_quarantined_with_their_reason(tmp_path):
    """A NaN (json reads it, FHIR JSON has none), a blank line, a searchset Bundle: none applied."""
    lines = [
        '{"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "DELETE", '
        '"url": "Condition/c9"}}], "total": NaN}',
        "",
        '{"resourceType": "Bundle", "type": "searchset", "entry": [{"request": {"method": "DELETE", '
        '"url": "Condition/c9"}}]}',
    ]
    second = _batch("b2") | {"del_1.ndjson": "\n".join(lines) + "\n"}
    _, lake_dir, reports = _ingest_both(tmp_path, second)
    deleted = by_name(reports[1])["del_1.ndjson"]
    assert (deleted.records_read, deleted.rows_stored, deleted.rows_quarantined) == (3, {}, 3)
    bad = [
        (r["_line_number"], r["reason_code"])
        for r in raw_quarantine(lake_dir)
        if "del_1" in r["_source_file"]
    ]
    assert bad == [(1, "MALFORMED_JSON"), (2, "EMPTY_LINE"), (3, "BULK_DELETED_NOT_A_BUNDLE")]
