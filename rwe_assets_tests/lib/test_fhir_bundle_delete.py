"""A Bundle's DELETE entries at ingest (lib/raw_ingest/fhir_json.py): which become the raw row that
retires their record in staging, and which are quarantined (docs/data-formats.md, "FHIR Bundles").
Staging's retirement is tested end to end in rwe_assets_tests/test_inputs_as_sent.py."""

from __future__ import annotations

import json

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.raw_ingest.fhir_json import DELETE_ROW_PREFIX
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.test_fhir_bundles import CONDITION as STAGED_CONDITION
from rwe_assets_tests.lib.test_fhir_bundles import (
    PATIENT,
    bundle,
    by_name,
    entry,
    ingest,
    raw_quarantine,
    raw_rows,
    staged_content,
)

CONDITION = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}


def delete(url: str) -> dict:
    return {"request": {"method": "DELETE", "url": url}}


def _ingest(tmp_path, *entries, kind="transaction"):
    lake_dir, _, report = ingest(tmp_path, {"b.json": json.dumps(bundle(*entries, kind=kind))})
    rows = [
        (r["resource_type"], r["resource_id"], r["resource_json"]) for r in raw_rows(lake_dir, "condition")
    ]
    bad = [(r["_line_number"], r["reason_code"], r["detail"]) for r in raw_quarantine(lake_dir)]
    return rows, bad, by_name(report)["b.json"]


@pytest.mark.parametrize("url", ["Condition/c9", "https://ehr.example.org/fhir/R4/Condition/c9"])
def test_a_delete_of_type_and_id_is_kept_as_the_raw_row_of_that_resource(tmp_path, url):
    rows, bad, result = _ingest(tmp_path, delete(url), kind="batch")
    assert rows == [
        (
            "Condition",
            "c9",
            DELETE_ROW_PREFIX + json.dumps(delete(url)["request"], separators=(",", ":")) + "}",
        )
    ]
    assert bad == [] and result.rows_stored == {"condition": 1}


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("Condition?identifier=http://hospital.example.org/mrn|12345", "a conditional delete"),
        ("Condition/c9/_history/2", "no Type/id"),
        ("Condition", "no Type/id"),
    ],
)
def test_a_delete_naming_no_single_resource_is_quarantined_without_its_url(tmp_path, url, kind):
    rows, bad, result = _ingest(tmp_path, delete(url))
    assert rows == [] and [(n, reason) for n, reason, _ in bad] == [(1, "BUNDLE_DELETE_UNRESOLVED")]
    assert kind in bad[0][2] and "12345" not in bad[0][2] and "hospital" not in bad[0][2]
    assert any("DELETE" in warning for warning in result.warnings)


def test_in_a_transaction_the_write_of_a_deleted_resource_stands(tmp_path):
    rows, bad, _ = _ingest(tmp_path, entry(CONDITION, "PUT"), delete("Condition/c1"))
    assert [(t, i) for t, i, _ in rows] == [("Condition", "c1")] and not rows[0][2].startswith(
        DELETE_ROW_PREFIX
    )
    assert [(n, reason) for n, reason, _ in bad] == [(2, "BUNDLE_DELETE_BEFORE_WRITE")]


def test_in_a_batch_a_delete_and_a_write_of_one_resource_are_both_quarantined(tmp_path):
    rows, bad, _ = _ingest(tmp_path, delete("Condition/c1"), entry(CONDITION, "PUT"), kind="batch")
    assert rows == [] and [(n, reason) for n, reason, _ in bad] == [
        (1, "BUNDLE_DELETE_CONFLICT"),
        (2, "BUNDLE_DELETE_CONFLICT"),
    ]


def test_a_delete_in_a_collection_is_not_applied(tmp_path):
    rows, bad, _ = _ingest(tmp_path, delete("Condition/c1"), kind="collection")
    assert rows == [] and [(n, reason) for n, reason, _ in bad] == [(1, "BUNDLE_DELETE_NOT_SUPPORTED")]


def test_a_delete_in_a_later_batch_retires_the_record_staged_before(tmp_path):
    """b1 staged, then b2's DELETE staged incrementally: the record leaves staging, retired DELETED;
    a full rebuild agrees."""
    condition = {k: v for k, v in STAGED_CONDITION.items() if k != "encounter"}
    b1 = {f"{r['resourceType']}.ndjson": json.dumps(r) + "\n" for r in (PATIENT, condition)}
    lake_dir, registry, _ = ingest(tmp_path, b1)
    build_staging(lake_dir, registry)
    assert [row["record_key"] for row in staged_content(lake_dir, "event")] == ["Condition/c1"]
    land(tmp_path / "landing", "site", "b2", {"b.json": json.dumps(bundle(delete("Condition/c1")))})
    ingest_batch(lake_dir, tmp_path / "landing", registry.get("site"), "b2")
    for incremental in (True, False):
        build_staging(lake_dir, registry, incremental=incremental)
        assert staged_content(lake_dir, "event") == []
        retired = lake.read_table(lake.table_path(lake_dir, "staging", "_retired")).to_pylist()
        assert [(r["record_key"], r["reason_code"]) for r in retired] == [("Condition/c1", "DELETED")]
