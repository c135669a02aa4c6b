"""What one FHIR resource reads of another before the lifecycle resolves versions follows the lifecycle's
own order (lib/staging/lifecycle.py): a Claim reads the ExplanationOfBenefit version the lifecycle keeps
by batch order even when an old batch's file is re-delivered later, a note is retired as REPLACED only
by the replacing note's current version, not by a stale one ingested last, and a request naming a
Medication takes the drug of its current version."""

from __future__ import annotations

import json
from collections import Counter

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging import incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_fhir_cost_coverage import claim, eob
from rwe_assets_tests.lib.staging.test_fhir_status import medication_request
from rwe_assets_tests.lib.staging.test_fhir_version_order import _outcomes
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.staging.test_notes_as_sent import replaces

APRIL, JUNE = "2020-04-01T10:00:00Z", "2020-06-01T10:00:00Z"


def _costs(lake_dir) -> list[str]:
    return sorted(
        r["record_key"] for r in lake.read_table(lake.table_path(lake_dir, "staging", "cost")).to_pylist()
    )


def test_a_redelivered_old_eob_file_does_not_overrule_a_later_batch(tmp_path, monkeypatch):
    """b1: Claim c1 and EOB eob1 adjudicating it; b2: eob1 entered-in-error (no meta in either). b1's EOB
    file is then delivered again (same resources, other bytes: a new file version ingested last). The
    lifecycle orders b1 before b2 (its first file came first), so eob1 is withdrawn and the Claim's money
    stays: the Claim is the cost row. Ordering by each batch's first EOB ingest made b1 the later batch:
    the Claim was retired ADJUDICATED by an EOB that is itself retired, and the encounter lost its cost."""
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = fhir.fhir_registry()
    first_eob = eob("eob1", "Claim/c1")
    b1 = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "Claim.000.ndjson": fhir.ndjson(claim("c1")),
        "ExplanationOfBenefit.000.ndjson": fhir.ndjson(first_eob),
    }
    withdrawn = {
        "ExplanationOfBenefit.000.ndjson": fhir.ndjson(eob("eob1", "Claim/c1", status="entered-in-error"))
    }
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", [b1, withdrawn])
    assert _costs(lake_dir) == ["Claim/c1"]

    redelivered = {"ExplanationOfBenefit.000.ndjson": json.dumps(first_eob, sort_keys=True) + "\n"}
    land(tmp_path / "landing", "site", "b1", redelivered)
    report = ingest_batch(lake_dir, tmp_path / "landing", registry.get("site"), "b1")
    # the same path, a new version: its rows are b1's current ones
    assert [f.file_version for f in report.files if f.file_version > 1] == [2]
    build_staging(lake_dir, registry)
    assert _costs(lake_dir) == ["Claim/c1"]
    assert _outcomes(lake_dir, "_retired") == Counter(
        {("ExplanationOfBenefit/eob1", "b2", "ENTERED_IN_ERROR"): 1}
    )
    assert_equals_full_build(lake_dir, registry)


def _note(did: str, text: str, instant: str, **fields) -> dict:
    return fhir.document(did, text, meta={"lastUpdated": instant}, **fields)


def _notes(lake_dir) -> list[tuple[str, str]]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
    return sorted((r["record_key"], r["note_text"]) for r in rows)


def test_a_stale_version_of_a_replacing_note_replaces_nothing(tmp_path, monkeypatch):
    """b1: note o1, and r1 of June, an addendum that replaces nothing; b2 re-sends r1 of April, which
    said it replaced o1. June is r1's current version (the April one is STALE_VERSION), so o1 stays:
    reading the replacing note's latest ingest retired o1 on the word of a version the lifecycle drops."""
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = fhir.fhir_registry()
    b1 = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "DocumentReference.000.ndjson": fhir.ndjson(
            _note("o1", "Original.", APRIL), _note("r1", "Addendum.", JUNE)
        ),
    }
    stale = {
        "DocumentReference.000.ndjson": fhir.ndjson(
            _note("r1", "Corrected.", APRIL, relatesTo=[replaces("o1")])
        )
    }
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", [b1, stale])
    assert _notes(lake_dir) == [("o1", "Original."), ("r1", "Addendum.")]
    assert _outcomes(lake_dir, "_merged") == Counter({("r1", "b2", "STALE_VERSION"): 1})
    assert_equals_full_build(lake_dir, registry)


def test_within_one_export_the_later_instant_of_a_replacing_note_decides(tmp_path):
    """One batch holds r1 twice (a split export): the version of June replaces o1, the one of April,
    on a later line, does not. June is current, so o1 is REPLACED whatever the line order."""
    registry = fhir.fhir_registry()
    files = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "DocumentReference.000.ndjson": fhir.ndjson(
            _note("o1", "Original.", APRIL),
            _note("r1", "Corrected.", JUNE, relatesTo=[replaces("o1")]),
            _note("r1", "Draft.", APRIL),
        ),
    }
    lake_dir, _ = fhir.stage(tmp_path, registry, files)
    assert _notes(lake_dir) == [("r1", "Corrected.")]
    assert _outcomes(lake_dir, "_retired") == Counter({("o1", "b1", "REPLACED"): 1})


def test_a_medication_request_names_the_drug_of_the_medications_current_version(tmp_path):
    """One export holds Medication med1 twice: of June (metformin) and, on a later line, of April
    (insulin). The request naming it by medicationReference is of June's drug, as the lifecycle keeps
    June; reading the latest line named April's."""
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    metformin, insulin = fhir.cc(rxnorm, "860975"), fhir.cc(rxnorm, "106892")
    registry = fhir.fhir_registry()
    files = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "Medication.000.ndjson": fhir.ndjson(
            {"resourceType": "Medication", "id": "med1", "meta": {"lastUpdated": JUNE}, "code": metformin},
            {"resourceType": "Medication", "id": "med1", "meta": {"lastUpdated": APRIL}, "code": insulin},
        ),
        "MedicationRequest.000.ndjson": fhir.ndjson(
            medication_request(
                "m1", medicationCodeableConcept=None, medicationReference={"reference": "Medication/med1"}
            )
        ),
    }
    lake_dir, _ = fhir.stage(tmp_path, registry, files)
    drugs = [
        (e["record_key"], e["code"]) for e in fhir.staged(lake_dir, "event") if e["event_kind"] == "drug"
    ]
    assert drugs == [("MedicationRequest/m1", "860975")]
