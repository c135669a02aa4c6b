"""FHIR Claim and ExplanationOfBenefit -> staging.cost, Coverage -> staging.enrollment (profile fhir_r4,
README.md "Claim, ExplanationOfBenefit and Coverage"): one cost row per billed encounter or drug (an
EOB supersedes the Claim it adjudicates), amounts by adjudication category, statuses that retire, and
Coverage spans with and without an end.

The EOB and Claim below are shaped as Synthea's FHIR R4 export writes them: one Claim and one EOB per
encounter, the encounter on every item, CMS Blue Button adjudication categories on the items, the
submitted total in total[] and the payer's share in payment; one Claim per prescription.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rwe_assets.lib.staging.lifecycle import STATUS_REASONS
from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    assert_reconciles,
    encounter,
    fhir_registry,
    ndjson,
    patient,
    quarantined,
    retired,
    stage,
    staged,
)
from rwe_assets_tests.lib.staging.test_fhir_status import medication_request
from rwe_assets_tests.lib.staging.test_lifecycle import stage as stage_batches

BLUE_BUTTON = "https://bluebutton.cms.gov/resources/variables/"
HL7_ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"


def money(value) -> dict:
    return {"value": value, "currency": "USD"}


def adjudication(
    code: str, value, system: str = "https://bluebutton.cms.gov/resources/codesystem/adjudication"
):
    return {"category": {"coding": [{"system": system, "code": code}]}, "amount": money(value)}


def claim(cid: str, enc: str | None = "Encounter/e1", total=100.0, **fields) -> dict:
    resource = {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "billablePeriod": {"start": "2020-03-01T09:00:00-05:00", "end": "2020-03-01T10:00:00-05:00"},
        "created": "2020-03-01T10:00:00-05:00",
        "item": [{"sequence": 1, "encounter": [{"reference": enc}]}] if enc else [{"sequence": 1}],
        "total": money(total),
    }
    return resource | fields


def eob(eid: str, claim_ref: str | None, enc: str | None = "Encounter/e1", **fields) -> dict:
    """Synthea's shape: billed from the encounter's end for a year; the encounter line, then a
    procedure line with Blue Button adjudications, each serviced over the encounter's period."""
    served = {"start": "2020-03-01T09:00:00-05:00", "end": "2020-03-01T10:00:00-05:00"}
    line = {
        "sequence": 2,
        "encounter": [{"reference": enc}] if enc else None,
        "servicedPeriod": served,
        "adjudication": [
            adjudication(BLUE_BUTTON + "line_coinsrnc_amt", 12.5),
            adjudication(BLUE_BUTTON + "line_prvdr_pmt_amt", 50.0),
            adjudication(BLUE_BUTTON + "line_sbmtd_chrg_amt", 62.5),
            adjudication(BLUE_BUTTON + "line_alowd_chrg_amt", 62.5),
            adjudication(BLUE_BUTTON + "line_bene_ptb_ddctbl_amt", 0),
        ],
    }
    resource = {
        "resourceType": "ExplanationOfBenefit",
        "id": eid,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "billablePeriod": {"start": "2020-03-01T10:00:00-05:00", "end": "2021-03-01T10:00:00-05:00"},
        "claim": {"reference": claim_ref} if claim_ref else None,
        "item": [
            {"sequence": 1, "encounter": [{"reference": enc}] if enc else None, "servicedPeriod": served},
            line,
        ],
        "total": [adjudication("submitted", 100.0, HL7_ADJUDICATION)],
        "payment": {"amount": money(80.0)},
    }
    return {k: v for k, v in (resource | fields).items() if v is not None}


def coverage(cid: str, start="2019-01-01", end: str | None = "2020-12-31", **fields) -> dict:
    resource = {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "subscriber": {"reference": "Patient/p0"},  # a parent holds the policy: not the person
        "period": {"start": start, "end": end} if end else {"start": start},
        "payor": [{"reference": "Organization/payer-1", "display": "Acme Health"}],
        "class": [{"type": {"coding": [{"code": "group"}]}, "value": "G7"},
                  {"type": {"coding": [{"code": "plan"}]}, "value": "GOLD-PPO"}],
    }  # fmt: skip
    return resource | fields


ENCOUNTERS = [encounter(e) for e in ("e1", "e2", "e3", "e4")]
CLAIMS = [
    claim("c1", "Encounter/e1"),  # adjudicated by eob1: its money is eob1's
    claim("c2", "Encounter/e2", total=40.0),  # no EOB: staged as billed
    claim("c3", "Encounter/e3", status="cancelled"),
    claim("c4", "Encounter/e4", total=30.0),  # its only EOB was entered in error: the claim stands
    # Synthea's medication claim: the prescription, the encounter on the item
    claim("c5", "Encounter/e1", total=9.99, prescription={"reference": "MedicationRequest/m1"}),
    claim("c6", "Encounter/e2"),  # adjudicated by eob6, which names no encounter itself
    # newer Synthea adjudicates medication claims too; the EOB names the encounter, not the drug
    claim("c7", "Encounter/e1", total=5.0, prescription={"reference": "MedicationRequest/m2"}),
]
EOBS = [
    eob("eob1", "Claim/c1"),
    eob("eob4", "Claim/c4", enc="Encounter/e4", status="entered-in-error"),
    # HL7 categories in total[], no payment element and no encounter: the links come from claim c6
    eob(
        "eob6",
        "urn:uuid:c6",
        enc=None,
        item=[{"sequence": 1}],
        billablePeriod={"start": "2020-03-02"},
        payment=None,
        total=[
            adjudication("submitted", 200.0, HL7_ADJUDICATION),
            adjudication("benefit", 150.0, HL7_ADJUDICATION),
            adjudication("copay", 20.0, HL7_ADJUDICATION),
            adjudication("deductible", 30.0, HL7_ADJUDICATION),
            adjudication("eligible", 180.0, HL7_ADJUDICATION),
        ],
    ),
    eob("eob7", "Claim/c7"),
]
COVERAGES = [
    coverage("cov1"),
    coverage("cov2", start="2021-01-01", end=None),  # in force: runs to the ingest date
    coverage("cov3", type={"coding": [{"code": "pay"}]}),  # self-pay: no insurance
    coverage("cov4", status="entered-in-error"),
    coverage("cov5", payor=[]),
]


@pytest.fixture(scope="module")
def staged_costs(tmp_path_factory):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(*ENCOUNTERS),
        "MedicationRequest.000.ndjson": ndjson(medication_request("m1"), medication_request("m2")),
        "Claim.000.ndjson": ndjson(*CLAIMS),
        "ExplanationOfBenefit.000.ndjson": ndjson(*EOBS),
        "Coverage.000.ndjson": ndjson(*COVERAGES),
    }
    return stage(tmp_path_factory.mktemp("fhir_cost"), fhir_registry(), files)


COST_DEFAULTS = {
    "source_system": "site",
    "source_person_id": "p1",
    "visit_key": None,
    "event_key": None,
    "cost_date": date(2020, 3, 1),
    "total_paid": None,
    "paid_by_payer": None,
    "paid_by_patient": None,
    "paid_patient_copay": None,
    "paid_patient_deductible": None,
    "paid_patient_coinsurance": None,
    "paid_by_primary": None,
    "amount_allowed": None,
    "drg_source_value": None,
}


def cost(record_key: str, entity: str, line: int, charge: float, **fields) -> dict:
    row = COST_DEFAULTS | {"record_key": record_key, "_source_entity": entity, "_line_number": line}
    return row | {"total_charge": charge, "total_cost": charge} | fields


def test_one_cost_row_per_billed_encounter_or_drug(staged_costs):
    lake_dir, report = staged_costs
    assert staged(lake_dir, "cost") == [
        cost("Claim/c2", "claim", 2, 40.0, visit_key="e2"),
        cost("Claim/c4", "claim", 4, 30.0, visit_key="e4"),
        cost("Claim/c5", "claim", 5, 9.99, event_key="MedicationRequest/m1"),
        # header total 'submitted' and payment; the patient's share from the items' coinsurance and
        # (zero) deductible; allowed from the items
        cost("ExplanationOfBenefit/eob1", "explanationofbenefit", 1, 100.0, visit_key="e1",
             paid_by_payer=80.0, paid_by_patient=12.5, paid_patient_coinsurance=12.5,
             paid_patient_deductible=0.0, amount_allowed=62.5),
        # HL7 header categories only; the visit is the one its claim bills
        cost("ExplanationOfBenefit/eob6", "explanationofbenefit", 3, 200.0, visit_key="e2",
             cost_date=date(2020, 3, 2), paid_by_payer=150.0, paid_by_patient=50.0,
             paid_patient_copay=20.0, paid_patient_deductible=30.0, amount_allowed=180.0),
        # the medication claim's EOB: on the drug its claim names, although its items name the encounter
        cost("ExplanationOfBenefit/eob7", "explanationofbenefit", 4, 100.0, event_key="MedicationRequest/m2",
             paid_by_payer=80.0, paid_by_patient=12.5, paid_patient_coinsurance=12.5,
             paid_patient_deductible=0.0, amount_allowed=62.5),
    ]  # fmt: skip
    assert_reconciles(report)


def test_an_eob_supersedes_its_claim_and_statuses_retire(staged_costs):
    lake_dir, _ = staged_costs
    assert "ADJUDICATED" in STATUS_REASONS  # a claim superseded by its EOB is retired, not quarantined
    cost_retired = [r for r in retired(lake_dir) if r[0] == "cost"]
    assert cost_retired == [
        ("cost", "claim", 1, "ADJUDICATED", "id"),
        ("cost", "claim", 3, "CANCELLED", "status"),
        ("cost", "claim", 6, "ADJUDICATED", "id"),
        ("cost", "claim", 7, "ADJUDICATED", "id"),
        ("cost", "explanationofbenefit", 2, "ENTERED_IN_ERROR", "status"),
    ]


def test_coverage_spans_become_enrollment(staged_costs):
    lake_dir, _ = staged_costs
    rows = {r["record_key"]: r for r in staged(lake_dir, "enrollment")}
    assert set(rows) == {"Coverage/cov1", "Coverage/cov2"}
    assert {k: rows["Coverage/cov1"][k] for k in ("source_person_id", "start_date", "end_date")} == {
        "source_person_id": "p1",  # the beneficiary, not the subscriber
        "start_date": date(2019, 1, 1),
        "end_date": date(2020, 12, 31),
    }
    assert rows["Coverage/cov1"]["payer_source_value"] == "payer-1"
    assert rows["Coverage/cov1"]["plan_source_value"] == "GOLD-PPO"
    # no end: in force up to the day its file was ingested
    assert rows["Coverage/cov2"]["end_date"] == datetime.now(UTC).date()
    assert [r for r in quarantined(lake_dir) if r[0] == "enrollment"] == [
        ("enrollment", "coverage", 3, "NOT_INSURED", "type"),
        ("enrollment", "coverage", 5, "MISSING_PAYER", "payor"),
    ]
    assert [r for r in retired(lake_dir) if r[0] == "enrollment"] == [
        ("enrollment", "coverage", 4, "ENTERED_IN_ERROR", "status")
    ]


def test_modelled_types_are_no_longer_counted_as_not_modelled(staged_costs):
    _, report = staged_costs
    assert not {entity for _, entity in report.not_modelled} & {"Claim", "ExplanationOfBenefit", "Coverage"}


def test_bad_money_and_links_are_quarantined_with_reason(tmp_path):
    bad = [
        claim("k1", enc=None),  # nothing to attach the money to
        claim("k2", total="12,50"),
        claim("k3", total=-5),
        claim("k4", total=10) | {"total": {"value": 10, "currency": "EUR"}},
        {k: v for k, v in claim("k5").items() if k != "total"},
        claim("k6", billablePeriod={"start": "2020-03"}, created=None),
    ]
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Claim.000.ndjson": ndjson(*bad),
        "ExplanationOfBenefit.000.ndjson": ndjson(eob("x1", None, patient={"reference": ""})),
    }
    lake_dir, report = stage(tmp_path, fhir_registry(), files)
    assert staged(lake_dir, "cost") == []
    assert [r for r in quarantined(lake_dir) if r[0] == "cost"] == [
        ("cost", "claim", 1, "MISSING_VISIT", "item.encounter"),
        ("cost", "claim", 2, "INVALID_NUMBER", "total"),
        ("cost", "claim", 3, "NEGATIVE_AMOUNT", "total"),
        ("cost", "claim", 4, "UNSUPPORTED_CURRENCY", "total"),
        ("cost", "claim", 5, "NO_AMOUNT", "total"),
        ("cost", "claim", 6, "INVALID_DATE", "item.serviced[x], billablePeriod.start, created"),
        ("cost", "explanationofbenefit", 1, "MISSING_PERSON", "patient"),
    ]
    assert_reconciles(report)


def test_an_eob_landing_later_retires_the_claim_staged_before(tmp_path):
    first = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Claim.000.ndjson": ndjson(claim("c1")),
    }
    lake_dir, report = stage_batches(
        tmp_path,
        fhir_registry(),
        "site",
        [first, {"ExplanationOfBenefit.000.ndjson": ndjson(eob("eob1", "Claim/c1"))}],
    )
    assert [r["record_key"] for r in staged(lake_dir, "cost")] == ["ExplanationOfBenefit/eob1"]
    assert all(r.unaccounted == 0 for r in report.reconciliation)
