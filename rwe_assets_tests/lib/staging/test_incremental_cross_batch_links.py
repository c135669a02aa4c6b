"""A FHIR link the profile SQL resolves from raw rows (an EOB adjudicating a Claim, lending it its
links; a note replacing another) that joins a new batch with an earlier one makes the run a full
build (incremental_scope.refuse_cross_batch_links): staged batch by batch equals one full build."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental_state
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_fhir_cost_coverage import claim, eob
from rwe_assets_tests.lib.staging.test_fhir_version_order import _outcomes
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.staging.test_notes_as_sent import replaces

PERSON = {
    "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
    "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
}


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


def _claims(*resources) -> dict[str, str]:
    return {"Claim.000.ndjson": fhir.ndjson(*resources)}


def _eobs(*resources) -> dict[str, str]:
    return {"ExplanationOfBenefit.000.ndjson": fhir.ndjson(*resources)}


def _notes(*resources) -> dict[str, str]:
    return {"DocumentReference.000.ndjson": fhir.ndjson(*resources)}


def _cost(lake_dir) -> dict[str, str | None]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "cost")).to_pylist()
    return {r["record_key"]: r["visit_key"] for r in rows}


def _staged_in_turn(tmp_path, batches):
    registry = fhir.fhir_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert reports[-1].mode == "full"
    assert "across a new batch and an earlier one" in reports[-1].reason
    assert_equals_full_build(lake_dir, registry)
    return lake_dir


def test_an_eob_adjudicates_a_claim_of_an_earlier_batch(tmp_path):
    lake_dir = _staged_in_turn(tmp_path, [PERSON | _claims(claim("c1")), _eobs(eob("eob1", "Claim/c1"))])
    assert list(_cost(lake_dir)) == ["ExplanationOfBenefit/eob1"]  # the encounter costed once
    assert _outcomes(lake_dir, "_retired") == Counter({("Claim/c1", "b1", "ADJUDICATED"): 1})


def test_a_claim_comes_after_the_eob_that_adjudicates_it(tmp_path):
    lake_dir = _staged_in_turn(tmp_path, [PERSON | _eobs(eob("eob1", "Claim/c1")), _claims(claim("c1"))])
    assert list(_cost(lake_dir)) == ["ExplanationOfBenefit/eob1"]
    assert _outcomes(lake_dir, "_retired") == Counter({("Claim/c1", "b2", "ADJUDICATED"): 1})


def test_an_eob_without_links_takes_those_of_a_claim_of_an_earlier_batch(tmp_path):
    bare = eob("eob1", "Claim/c1", enc=None, item=[{"sequence": 1}])
    lake_dir = _staged_in_turn(tmp_path, [PERSON | _claims(claim("c1")), _eobs(bare)])
    assert _cost(lake_dir) == {"ExplanationOfBenefit/eob1": "e1"}


def test_a_note_replaces_a_note_of_an_earlier_batch(tmp_path):
    first, second = (
        fhir.document("d1", "First draft."),
        fhir.document("d2", "Corrected.", relatesTo=[replaces("d1")]),
    )
    lake_dir = _staged_in_turn(tmp_path, [PERSON | _notes(first), _notes(second)])
    notes = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
    assert [r["record_key"] for r in notes] == ["d2"]
    assert _outcomes(lake_dir, "_retired")[("d1", "b1", "REPLACED")] == 1


def test_a_replacement_sent_again_as_an_addendum_puts_the_note_back(tmp_path):
    first, second = (
        fhir.document("d1", "First draft."),
        fhir.document("d2", "Corrected.", relatesTo=[replaces("d1")]),
    )
    again = fhir.document("d2", "Corrected, an addendum.", relatesTo=[replaces("d1") | {"code": "appends"}])
    lake_dir = _staged_in_turn(tmp_path, [PERSON | _notes(first, second), _notes(again)])
    notes = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
    assert sorted(r["record_key"] for r in notes) == ["d1", "d2"]


def test_links_within_the_new_batch_stay_incremental(tmp_path):
    registry = fhir.fhir_registry()
    b2 = _claims(claim("c2")) | _eobs(eob("eob2", "Claim/c2"))
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [PERSON | _claims(claim("c1")), b2])
    assert reports[-1].mode == "incremental"
    assert set(_cost(lake_dir)) == {"Claim/c1", "ExplanationOfBenefit/eob2"}
    assert_equals_full_build(lake_dir, registry)
