"""Drug exposures say what the prescription says: the drug named through a Medication (contained or
sent beside the request), the end the prescriber stated, and otherwise the last day the supply and its
refills cover (start + days_supply x (1 + refills) - 1), or the start day when nothing says more."""

from __future__ import annotations

import duckdb
import pytest

from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging.test_fhir_r4 import RXNORM, cc, encounter, fhir_registry, ndjson, patient

LISINOPRIL, METFORMIN = "314076", "860975"


def request(mid: str, **fields) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
                "medicationCodeableConcept": cc(RXNORM, LISINOPRIL), "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"}, "authoredOn": "2020-03-01T09:00:00-05:00"}  # fmt: skip
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def medication(mid: str, code: str) -> dict:
    return {"resourceType": "Medication", "id": mid, "code": cc(RXNORM, code)}


def days(n: int) -> dict:
    return {"value": n, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}


REQUESTS = [
    request("no-duration"),
    request("thirty-days", dispenseRequest={"expectedSupplyDuration": days(30)}),
    request(
        "with-refills", dispenseRequest={"expectedSupplyDuration": days(30), "numberOfRepeatsAllowed": 2}
    ),
    request(
        "stated-end",
        dosageInstruction=[
            {"timing": {"repeat": {"boundsPeriod": {"start": "2020-03-01", "end": "2020-03-10"}}}}
        ],
    ),
    request(
        "contained",
        medicationCodeableConcept=None,
        medicationReference={"reference": "#med1"},
        contained=[medication("med1", METFORMIN)],
    ),
    request("referenced", medicationCodeableConcept=None, medicationReference={"reference": "Medication/m9"}),
]


@pytest.fixture(scope="module")
def exposures(tmp_path_factory):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "MedicationRequest.000.ndjson": ndjson(*REQUESTS),
        "Medication.000.ndjson": ndjson(medication("m9", METFORMIN)),
    }
    cdm = build(tmp_path_factory.mktemp("drugs"), fhir_registry(), "site", [files])
    with duckdb.connect(str(cdm), read_only=True) as con:
        rows = con.execute(
            "SELECT drug_source_value, drug_concept_id, drug_exposure_start_date::VARCHAR, "
            "drug_exposure_end_date::VARCHAR, days_supply, refills FROM cdm.drug_exposure ORDER BY ALL"
        ).fetchall()
    return rows


def test_end_dates_follow_the_omop_convention(exposures):
    by_end = sorted((start, end, supply, refills) for _, _, start, end, supply, refills in exposures)
    assert by_end == [
        ("2020-03-01", "2020-03-01", None, None),  # nothing says how long: the start day
        ("2020-03-01", "2020-03-01", None, None),  # (contained)
        ("2020-03-01", "2020-03-01", None, None),  # (referenced)
        ("2020-03-01", "2020-03-10", None, None),  # the end the prescriber stated
        ("2020-03-01", "2020-03-30", 30, None),  # 30 days: the 1st to the 30th
        ("2020-03-01", "2020-05-29", 30, 2),  # 30 days x 3 fills = 90 days
    ]


def test_a_drug_named_by_a_medication_resource_is_mapped(exposures):
    codes = sorted((source, concept > 0) for source, concept, *_ in exposures)
    assert codes.count((METFORMIN, True)) == 2  # contained and referenced Medication both resolved
    assert codes.count((LISINOPRIL, True)) == 4
