"""The source's version instant orders versions across batches (lib/staging/lifecycle.py): an older
FHIR version (earlier meta.lastUpdated) re-sent in a later batch is counted STALE_VERSION and changes
nothing, whether the batches are staged in one full build or one run each; where a version states no
instant (no meta, a Bundle DELETE), batch order decides."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental_state
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_lifecycle as cases
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn

MARCH, APRIL, MAY = "2020-03-01T10:00:00Z", "2020-04-01T10:00:00+02:00", "2020-05-01T10:00:00Z"
ASTHMA, DIABETES = "195967001", "44054006"


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


def _condition(code: str, last_updated: str | None, **fields) -> dict:
    meta = {"meta": {"lastUpdated": last_updated}} if last_updated else {}
    return fhir.condition("c1", code=fhir.cc(fhir.SNOMED, code), **meta, **fields)


def _conditions(*resources: dict) -> dict[str, str]:
    return {"Condition.000.ndjson": fhir.ndjson(*resources)}


def _staged_codes(lake_dir) -> list[tuple[str, str]]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    return sorted((r["record_key"], r["code"]) for r in rows)


def _outcomes(lake_dir, table: str) -> Counter:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", table)).to_pylist()
    return Counter((r["record_key"], r["_batch_id"], r["reason_code"]) for r in rows)


def test_an_older_version_re_sent_later_is_stale_in_every_run(tmp_path):
    """c1: version of March (b1), May (b2), April re-sent in b3. May stays current; the April row is
    STALE_VERSION, the March row SUPERSEDED; the staged row keeps its instant for the next run."""
    registry = fhir.fhir_registry()
    batches = [
        cases.fhir_extract(_condition(DIABETES, MARCH)),
        _conditions(_condition(ASTHMA, MAY)),
        _conditions(_condition(DIABETES, APRIL)),
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert [r.mode for r in reports] == ["full", "incremental", "incremental"]
    assert _staged_codes(lake_dir) == [("Condition/c1", ASTHMA)]
    merged = Counter({("Condition/c1", "b1", "SUPERSEDED"): 1, ("Condition/c1", "b3", "STALE_VERSION"): 1})
    assert _outcomes(lake_dir, "_merged") == merged
    assert all(r.unaccounted == 0 for report in reports for r in report.reconciliation)
    event = lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    assert [str(e["_version_at"]) for e in event] == ["2020-05-01 10:00:00+00:00"]
    assert_equals_full_build(lake_dir, registry)
    assert _outcomes(lake_dir, "_merged") == merged


def test_a_stale_retraction_does_not_withdraw_the_current_version(tmp_path):
    """An entered-in-error version older than the staged one is history, not the record's state."""
    registry = fhir.fhir_registry()
    retraction = _condition(DIABETES, APRIL, verificationStatus={"coding": [{"code": "entered-in-error"}]})
    batches = [cases.fhir_extract(_condition(ASTHMA, MAY)), _conditions(retraction)]
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", batches)
    assert _staged_codes(lake_dir) == [("Condition/c1", ASTHMA)]
    assert _outcomes(lake_dir, "_merged") == Counter({("Condition/c1", "b2", "STALE_VERSION"): 1})
    assert _outcomes(lake_dir, "_retired") == Counter()
    assert_equals_full_build(lake_dir, registry)


def test_a_stale_observation_does_not_bring_back_a_dropped_component(tmp_path):
    """o1 of May has two components (b1); o1 of April, with a third, is re-sent in b2: the third is no
    row of the current version (ABSENT_FROM_NEWER_VERSION), the other two are stale."""
    registry = fhir.fhir_registry()
    newer = cases.blood_pressure("o1", ("8480-6", 125.0), ("8462-4", 85.0)) | {"meta": {"lastUpdated": MAY}}
    older = cases.blood_pressure("o1", ("8480-6", 120.0), ("8462-4", 80.0), ("8478-0", 90.0)) | {
        "meta": {"lastUpdated": APRIL}
    }
    batches = [
        cases.fhir_extract(observations=(newer,)),
        {"Observation.000.ndjson": fhir.ndjson(older)},
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert reports[-1].mode == "incremental"
    staged = lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    assert sorted((r["record_key"], r["value_as_number"]) for r in staged) == [
        ("Observation/o1#0", 125.0),
        ("Observation/o1#1", 85.0),
    ]
    assert _outcomes(lake_dir, "_retired") == Counter(
        {("Observation/o1#2", "b2", "ABSENT_FROM_NEWER_VERSION"): 1}
    )
    assert _outcomes(lake_dir, "_merged") == Counter(
        {("Observation/o1#0", "b2", "STALE_VERSION"): 1, ("Observation/o1#1", "b2", "STALE_VERSION"): 1}
    )
    assert_equals_full_build(lake_dir, registry)


def test_without_an_instant_on_either_side_the_later_batch_wins(tmp_path):
    """b2 sends c1 without meta: nothing says it is older than b1's May version, so batch order decides."""
    registry = fhir.fhir_registry()
    batches = [cases.fhir_extract(_condition(ASTHMA, MAY)), _conditions(_condition(DIABETES, None))]
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", batches)
    assert _staged_codes(lake_dir) == [("Condition/c1", DIABETES)]
    assert _outcomes(lake_dir, "_merged") == Counter({("Condition/c1", "b1", "SUPERSEDED"): 1})
    assert_equals_full_build(lake_dir, registry)
