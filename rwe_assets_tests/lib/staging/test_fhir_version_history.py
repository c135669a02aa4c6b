"""FHIR version order is pairwise and independent of how the history was staged (lib/staging/lifecycle.py,
HIGH_WATER): a version older than one an earlier batch stated is stale, even when a version between
them states no instant or is a DELETE; a DELETE is ordered by its Bundle's meta.lastUpdated (a deleted
file's Bundle without one is older than a resource of the same export's output); and a Claim's adjudication reads the EOB version the lifecycle keeps.
Every case is staged run by run and compared with one full build of the same raw."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging import incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_lifecycle as cases
from rwe_assets_tests.lib.staging.test_fhir_cost_coverage import claim, eob
from rwe_assets_tests.lib.staging.test_fhir_version_order import (
    APRIL,
    ASTHMA,
    DIABETES,
    MARCH,
    MAY,
    _condition,
    _conditions,
    _outcomes,
    _staged_codes,
)
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.test_bulk_deleted import _batch, _ingest_both, _retired

HYPERTENSION = "38341003"
JUNE = "2020-06-01T10:00:00Z"


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


def _delete_bundle(last_updated: str | None) -> dict[str, str]:
    bundle = {"resourceType": "Bundle", "type": "transaction"}
    if last_updated:
        bundle["meta"] = {"lastUpdated": last_updated}
    bundle["entry"] = [{"request": {"method": "DELETE", "url": "Condition/c1"}}]
    return {"bundle.json": json.dumps(bundle)}


def test_a_version_without_an_instant_does_not_let_a_stale_one_win(tmp_path):
    """c1 without meta (b1), of May (b2), of April re-sent (b3): April is older than May, whatever b1
    states; a full build used to let it win because one version of the key had no instant."""
    registry = fhir.fhir_registry()
    batches = [
        cases.fhir_extract(_condition(ASTHMA, None)),
        _conditions(_condition(DIABETES, MAY)),
        _conditions(_condition(HYPERTENSION, APRIL)),
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert [r.mode for r in reports] == ["full", "incremental", "incremental"]
    assert _staged_codes(lake_dir) == [("Condition/c1", DIABETES)]
    merged = Counter({("Condition/c1", "b1", "SUPERSEDED"): 1, ("Condition/c1", "b3", "STALE_VERSION"): 1})
    assert _outcomes(lake_dir, "_merged") == merged
    assert_equals_full_build(lake_dir, registry)


def test_an_unstated_current_version_keeps_the_instant_before_it(tmp_path):
    """c1 of May (b1), then without meta (b2, current: nothing says it is older), then of April (b3):
    April is older than May, so b2 stays current; the staged row keeps May for the next run."""
    registry = fhir.fhir_registry()
    batches = [
        cases.fhir_extract(_condition(ASTHMA, MAY)),
        _conditions(_condition(DIABETES, None)),
        _conditions(_condition(HYPERTENSION, APRIL)),
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert reports[-1].mode == "incremental"
    assert _staged_codes(lake_dir) == [("Condition/c1", DIABETES)]
    assert _outcomes(lake_dir, "_merged")[("Condition/c1", "b3", "STALE_VERSION")] == 1
    assert_equals_full_build(lake_dir, registry)


def test_an_older_version_re_sent_after_a_delete_stays_deleted(tmp_path):
    """c1 of May (b1), a Bundle DELETE without meta (b2), c1 of April (b3): April is older than the
    deleted version. The record has no staged row to compare with, so that run is a full build."""
    registry = fhir.fhir_registry()
    batches = [
        cases.fhir_extract(_condition(ASTHMA, MAY)),
        _delete_bundle(None),
        _conditions(_condition(DIABETES, APRIL)),
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert [r.mode for r in reports] == ["full", "incremental", "full"]
    assert "withdrew" in reports[-1].reason
    assert _staged_codes(lake_dir) == []
    assert _outcomes(lake_dir, "_retired") == Counter({("Condition/c1", "b2", "DELETED"): 1})
    assert _outcomes(lake_dir, "_merged")[("Condition/c1", "b3", "STALE_VERSION")] == 1
    assert_equals_full_build(lake_dir, registry)


def test_a_delete_is_ordered_by_its_bundles_instant(tmp_path):
    """c1 of March (b1), deleted by a Bundle of May (b2); c1 of April (b3) is older than the deletion
    and stays deleted; c1 of June (b4), written after it, is the record again."""
    registry = fhir.fhir_registry()
    batches = [
        cases.fhir_extract(_condition(ASTHMA, MARCH)),
        _delete_bundle(MAY),
        _conditions(_condition(DIABETES, APRIL)),
    ]
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", batches)
    assert _staged_codes(lake_dir) == []
    assert_equals_full_build(lake_dir, registry)
    land(tmp_path / "landing", "site", "b4", _conditions(_condition(HYPERTENSION, JUNE)))
    ingest_batch(lake_dir, tmp_path / "landing", registry.get("site"), "b4")
    build_staging(lake_dir, registry)
    assert _staged_codes(lake_dir) == [("Condition/c1", HYPERTENSION)]
    assert_equals_full_build(lake_dir, registry)


def _c1_at(instant: str) -> str:
    c1 = json.loads(_batch("b1")["Condition.ndjson"].splitlines()[0])
    c1["meta"]["lastUpdated"] = instant
    return json.dumps(c1) + "\n"


def _raw_deletes(lake_dir) -> dict[str, dict]:
    rows = lake.read_table(lake.table_path(lake_dir, "raw", "site", "condition")).to_pylist()
    return {r["resource_id"]: json.loads(r["resource_json"]) for r in rows if "request" in r["resource_json"]}


def test_a_resource_updated_then_deleted_in_one_export_is_deleted(tmp_path):
    """One bulk export: c1 updated at 07:00 (Condition.ndjson) and deleted at 08:00 (its deleted file,
    the Bundle's meta.lastUpdated): the deletion is the later version, c1 is retired."""
    b2 = _batch("b2")
    b2["Condition.ndjson"] += _c1_at("2020-04-01T07:00:00Z")
    registry, lake_dir, _ = _ingest_both(tmp_path, b2)
    assert _raw_deletes(lake_dir)["c1"]["meta"] == {"lastUpdated": "2020-04-01T08:00:00Z"}
    build_staging(lake_dir, registry)
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "_quarantine")).to_pylist()
    assert [r for r in rows if r["record_key"] == "Condition/c1"] == []
    assert _retired(lake_dir)[("Condition/c1", "DELETED")] == 1
    assert _outcomes(lake_dir, "_merged")[("Condition/c1", "b2", "SUPERSEDED")] == 1


def test_a_resource_in_the_output_of_the_export_that_deletes_it_undated_stays(tmp_path):
    """A deleted file's Bundle states no instant; c1 of 2020-04-01 07:00 is in the same export's output,
    which holds what exists at the export's transactionTime: c1 was re-created after the deletion and
    stays (the undated deletion is not given the manifest's transactionTime, which would always win)."""
    b2 = _batch("b2")
    lines = b2["del_1.ndjson"].splitlines(keepends=True)
    first = json.loads(lines[0])
    del first["meta"]
    b2["del_1.ndjson"] = json.dumps(first) + "\n" + "".join(lines[1:])
    b2["Condition.ndjson"] += _c1_at("2020-04-01T07:00:00Z")
    registry, lake_dir, _ = _ingest_both(tmp_path, b2)
    deletes = _raw_deletes(lake_dir)
    assert "meta" not in deletes["c1"]
    assert deletes["c2"]["meta"] == {"lastUpdated": "2020-04-01T08:05:00Z"}  # its Bundle's own
    build_staging(lake_dir, registry)
    assert "Condition/c1" in [key for key, _ in _staged_codes(lake_dir)]
    assert _retired(lake_dir)[("Condition/c1", "DELETED")] == 0


def test_a_stale_eob_does_not_put_its_claim_back(tmp_path):
    """Claim c1 of April and EOB eob1 of May adjudicating it (b1); a draft eob1 of April re-sent (b2) is
    stale: the lifecycle keeps the May EOB, so the Claim stays adjudicated, one cost row in every run.
    (Re-sending a linking EOB makes the run a full build.)"""
    registry = fhir.fhir_registry()
    b1 = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "Claim.000.ndjson": fhir.ndjson(claim("c1") | {"meta": {"lastUpdated": APRIL}}),
        "ExplanationOfBenefit.000.ndjson": fhir.ndjson(
            eob("eob1", "Claim/c1") | {"meta": {"lastUpdated": MAY}}
        ),
    }
    draft = eob("eob1", "Claim/c1", status="draft") | {"meta": {"lastUpdated": APRIL}}
    b2 = {"ExplanationOfBenefit.000.ndjson": fhir.ndjson(draft)}
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [b1, b2])
    assert reports[-1].mode == "full"  # an EOB of an earlier batch sent again (refuse_cross_batch_links)
    cost = lake.read_table(lake.table_path(lake_dir, "staging", "cost")).to_pylist()
    assert [r["record_key"] for r in cost] == ["ExplanationOfBenefit/eob1"]
    assert _outcomes(lake_dir, "_retired") == Counter({("Claim/c1", "b1", "ADJUDICATED"): 1})
    assert_equals_full_build(lake_dir, registry)
