"""FHIR status, verificationStatus and intent: a resource the source says is not a fact (cancelled,
planned, refuted, not done, entered in error) stages nothing and is counted as retired with its reason;
the statuses of facts that happened stay staged (fhir_r4/README.md, "Status")."""

from __future__ import annotations

import pytest

from rwe_assets.lib import lake
from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    LOINC,
    RXNORM,
    SNOMED,
    cc,
    condition,
    encounter,
    fhir_registry,
    ndjson,
    observation,
    patient,
    stage,
)


def medication_request(mid: str, **fields) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
                "medicationCodeableConcept": cc(RXNORM, "314076"), "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"}, "authoredOn": "2020-03-01T09:00:00-05:00"}  # fmt: skip
    return resource | fields


def procedure(pid: str, **fields) -> dict:
    resource = {"resourceType": "Procedure", "id": pid, "status": "completed", "code": cc(SNOMED, "430193006"),
                "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
                "performedDateTime": "2020-03-01T09:00:00-05:00"}  # fmt: skip
    return resource | fields


def allergy(aid: str, verification: str) -> dict:
    return {"resourceType": "AllergyIntolerance", "id": aid, "verificationStatus": {"coding": [{"code": verification}]},
            "code": cc(SNOMED, "91935009"), "patient": {"reference": "Patient/p1"},
            "recordedDate": "2020-03-01T09:00:00-05:00"}  # fmt: skip


def verified(status: str) -> dict:
    return {"verificationStatus": {"coding": [{"code": status}]}}


WEIGHT = {"code": cc(LOINC, "29463-7"), "valueQuantity": {"value": 70, "unit": "kg"}}
# (file, resource, staged?, retired reason)
CASES = [
    ("MedicationRequest", medication_request("m-active"), True, None),
    ("MedicationRequest", medication_request("m-stopped", status="stopped"), True, None),
    ("MedicationRequest", medication_request("m-cancelled", status="cancelled"), False, "CANCELLED"),
    ("MedicationRequest", medication_request("m-draft", status="draft"), False, "PLANNED"),
    ("MedicationRequest", medication_request("m-plan", intent="plan"), False, "PLANNED"),
    ("MedicationRequest", medication_request("m-do-not", doNotPerform=True), False, "NOT_DONE"),
    ("MedicationRequest", medication_request("m-do", doNotPerform=False), True, None),
    (
        "MedicationRequest",
        medication_request("m-error", status="entered-in-error"),
        False,
        "ENTERED_IN_ERROR",
    ),
    ("Condition", condition("c-confirmed", **verified("confirmed")), True, None),
    ("Condition", condition("c-provisional", **verified("provisional")), True, None),
    ("Condition", condition("c-refuted", **verified("refuted")), False, "REFUTED"),
    ("Condition", condition("c-error", **verified("entered-in-error")), False, "ENTERED_IN_ERROR"),
    ("AllergyIntolerance", allergy("a-refuted", "refuted"), False, "REFUTED"),
    ("Procedure", procedure("p-done"), True, None),
    ("Procedure", procedure("p-not-done", status="not-done"), False, "NOT_DONE"),
    ("Procedure", procedure("p-preparation", status="preparation"), False, "PLANNED"),
    ("Observation", observation("o-final", **WEIGHT), True, None),
    ("Observation", observation("o-cancelled", status="cancelled", **WEIGHT), False, "CANCELLED"),
    ("Observation", observation("o-registered", status="registered", **WEIGHT), False, "PLANNED"),
    ("Encounter", encounter("e-cancelled", status="cancelled"), False, "CANCELLED"),
    ("Encounter", encounter("e-planned", status="planned"), False, "PLANNED"),
]


@pytest.fixture(scope="module")
def staged_cases(tmp_path_factory):
    files: dict[str, list[dict]] = {"Patient": [patient("p1")], "Encounter": [encounter("e1")]}
    for resource_type, resource, _, _ in CASES:
        files.setdefault(resource_type, []).append(resource)
    lake_dir, report = stage(
        tmp_path_factory.mktemp("status"),
        fhir_registry(),
        {f"{name}.000.ndjson": ndjson(*resources) for name, resources in files.items()},
    )

    def read(name):
        return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()

    staged = {r["record_key"].split("#")[0].split("/")[-1] for t in ("visit", "event") for r in read(t)}
    retired = {r["record_key"].split("#")[0].split("/")[-1]: r["reason_code"] for r in read("_retired")}
    return staged, retired, report


@pytest.mark.parametrize(
    ("resource_type", "resource", "is_staged", "reason"), CASES, ids=[c[1]["id"] for c in CASES]
)
def test_a_status_decides_whether_the_resource_is_a_fact(
    staged_cases, resource_type, resource, is_staged, reason
):
    staged, retired, report = staged_cases
    assert (resource["id"] in staged) == is_staged
    assert retired.get(resource["id"]) == reason
    assert all(r.unaccounted == 0 for r in report.reconciliation)
