"""Review findings in incremental staging: a merge that fails its count check leaves no duplicate
behind; a death stated in an earlier DE-SynPUF year file survives a later year file's batch; a FHIR
medication request, administration, dispense or statement naming a Medication of another batch."""

import inspect
import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental_scope, incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.incremental import staged_digests
from rwe_assets.lib.staging.incremental_state import STATE_KEY, staging_path
from rwe_assets_tests.lib.staging import test_fhir_link_macros as link_macros
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_fhir_status import medication_request
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.staging.test_staging_layout import clustered_table, content, merge, rows
from rwe_assets_tests.lib.staging.test_synpuf import beneficiary, csv_text, payer_registry, staged


def test_a_merge_that_fails_its_check_is_undone_before_it_raises(tmp_path):
    clustered_table(tmp_path)
    before = content(tmp_path)
    corrected = rows("p3", range(3, 4), value="v2")
    wrong = pa.table(  # the scope named another person's file: the merge inserts a second p3-3
        {"source_system": ["site"], "record_key": ["p3-3"], "source_person_id": ["p1"]}
    )
    with pytest.raises(RuntimeError, match="outside the scope"):
        merge(tmp_path, corrected, None, wrong)
    assert content(tmp_path) == before
    last = DeltaTable(str(staging_path(tmp_path, "event"))).history(1)[0]
    assert last["operation"] == "RESTORE" and STATE_KEY not in last  # the next run is full


# ---- a FHIR drug named by a medicationReference to a Medication resource ----------------------------

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
FHIR_PERSON = {
    "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
    "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
}


def _medication(code: str) -> dict[str, str]:
    return {
        "Medication.000.ndjson": fhir.ndjson(
            {"resourceType": "Medication", "id": "med1", "code": fhir.cc(RX, code)}
        )
    }


def _request() -> dict[str, str]:
    by_reference = medication_request(
        "m1", medicationCodeableConcept=None, medicationReference={"reference": "Medication/med1"}
    )
    return {"MedicationRequest.000.ndjson": fhir.ndjson(by_reference)}


def _administration() -> dict[str, str]:
    given = {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
             "medicationReference": {"reference": "Medication/med1"}, "subject": {"reference": "Patient/p1"},
             "context": {"reference": "Encounter/e1"}, "effectiveDateTime": "2020-03-01T09:00:00-05:00"}  # fmt: skip
    return {"MedicationAdministration.000.ndjson": fhir.ndjson(given)}


def _drugs(lake_dir) -> dict[str, str]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    return {r["record_key"]: r["code"] for r in rows if r["event_kind"] == "drug"}


@pytest.mark.parametrize(
    "batches, drugs",
    [  # the Medication first, its reader in a later batch (request, administration)
        ([FHIR_PERSON | _medication("860975"), _request()], {"MedicationRequest/m1": "860975"}),
        (
            [FHIR_PERSON | _medication("860975"), _administration()],
            {"MedicationAdministration/ma1": "860975"},
        ),
        # the Medication re-sent with another code: the earlier request's drug changes
        (
            [FHIR_PERSON | _medication("860975") | _request(), _medication("314076")],
            {"MedicationRequest/m1": "314076"},
        ),
    ],
    ids=["request", "administration", "medication re-sent"],
)
def test_a_medication_of_another_batch_makes_the_run_full(tmp_path, monkeypatch, batches, drugs):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = fhir.fhir_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert reports[-1].mode == "full" and "links a medication across" in reports[-1].reason
    assert _drugs(lake_dir) == drugs
    assert_equals_full_build(lake_dir, registry)


def test_a_medication_sent_with_its_request_stays_incremental(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = fhir.fhir_registry()
    # the second request states its code: the Medication staged earlier does not name its drug
    coded = medication_request("m2", medicationReference={"reference": "Medication/med1"})
    batches = [
        FHIR_PERSON,
        _medication("860975") | _request(),
        {"MedicationRequest.000.ndjson": fhir.ndjson(coded)},
    ]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", batches)
    assert [r.mode for r in reports[1:]] == ["incremental", "incremental"]
    assert _drugs(lake_dir) == {"MedicationRequest/m1": "860975", "MedicationRequest/m2": "314076"}
    assert_equals_full_build(lake_dir, registry)


# ---- DE-SynPUF: values of a person aggregated over every year file ------------------------------


def _year(year: int, months: int, death: str | None = None, bene: str = "AAA") -> dict[str, str]:
    row = beneficiary(bene, {m: "H1" for m in range(1, months + 1)}, **({"death": death} if death else {}))
    return {f"DE1_0_{year}_Beneficiary_Summary_File_Sample_1.csv": csv_text("Beneficiary", [row])}


def _person(lake_dir) -> tuple[str, str]:
    (person,) = staged(lake_dir, "person_source")
    return str(person["death_date"]), str(person["record_updated"])


@pytest.mark.parametrize(
    "years",
    [[_year(2019, 5, "20190515"), _year(2020, 12)], [_year(2020, 12), _year(2019, 5, "20190515")]],
    ids=["in_order", "late_2019"],
)
def test_a_death_only_an_earlier_batch_states_is_kept(tmp_path, monkeypatch, years):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = payer_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "payer", years)
    # the new year's row is staged with the values aggregated over both years, and the staged row
    # of the other year takes them too (incremental_scope.aggregate_scope_rows): no full build needed
    assert reports[-1].mode == "incremental"
    assert _person(lake_dir) == ("2019-05-15", "2020-12-31 00:00:00")
    assert_equals_full_build(lake_dir, registry)


def test_a_later_year_agreeing_with_the_staged_person_stays_incremental(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = payer_registry()
    # the later year states the death itself; a new person's first year file aggregates nothing
    years = [_year(2019, 12), _year(2020, 5, "20200515"), _year(2020, 12, bene="BBB")]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "payer", years)
    assert [r.mode for r in reports[1:]] == ["incremental", "incremental"]
    stepwise = staged_digests(lake_dir)
    assert build_staging(lake_dir, registry, incremental=False).mode == "full"
    assert staged_digests(lake_dir) == stepwise


def test_a_medication_reference_is_read_by_one_macro_from_the_parsed_resource_or_its_text():
    con = link_macros._con()
    readers = [
        {"medicationReference": {"reference": "Medication/med-1"}},
        {"medicationReference": {"reference": "https://fhir.example.org/r4/Medication/med-2/_history/3"}},
        {"medicationReference": {"reference": "#contained-1"}},  # resolved inside the resource
        {
            "medicationCodeableConcept": fhir.cc(RX, "860975"),
            "medicationReference": {"reference": "Medication/m"},
        },
        {
            "medicationCodeableConcept": {"text": "no coding"},
            "medicationReference": {"reference": "Medication/m"},
        },
        {},
    ]
    shape = '\'{"medicationCodeableConcept": {"coding": [{"code": "VARCHAR"}]}, "medicationReference": {"reference": "VARCHAR"}}\''
    found = [
        con.execute(
            f"SELECT rwe_fhir_medication_id_json($j), "
            f"rwe_fhir_medication_id(from_json($j, {shape}).medicationCodeableConcept, "
            f"from_json($j, {shape}).medicationReference.reference)",
            {"j": json.dumps(r)},
        ).fetchone()
        for r in readers
    ]
    assert [a for a, _ in found] == [b for _, b in found] == ["med-1", "med-2", None, None, "m", None]
    events = (link_macros.FHIR / "event" / "_events.yaml").read_text()
    assert events.count("ON med.id = rwe_fhir_medication_id(") == 2  # the request's and the administration's
    assert "rwe_fhir_medication_id_json(" in inspect.getsource(incremental_scope)
