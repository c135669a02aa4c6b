"""FHIR money and insurance through to the CDM: Claim and ExplanationOfBenefit become COST rows linked to
the visit or drug exposure they pay for, one per billed encounter (the EOB, not also its Claim); Coverage
becomes PAYER_PLAN_PERIOD, and a cost on a covered day points at that period."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging import test_fhir_cost_coverage as fhir_cost
from rwe_assets_tests.lib.staging.test_fhir_r4 import encounter, fhir_registry, ndjson, patient
from rwe_assets_tests.lib.staging.test_fhir_status import medication_request


@pytest.fixture(scope="module")
def cdm(tmp_path_factory):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1"), encounter("e2")),
        "MedicationRequest.000.ndjson": ndjson(medication_request("m1")),
        "Claim.000.ndjson": ndjson(
            fhir_cost.claim("c1", "Encounter/e1"),  # adjudicated by eob1
            fhir_cost.claim("c2", "Encounter/e2", total=40.0),  # no EOB
            fhir_cost.claim(
                "c5", "Encounter/e1", total=9.99, prescription={"reference": "MedicationRequest/m1"}
            ),
        ),
        "ExplanationOfBenefit.000.ndjson": ndjson(fhir_cost.eob("eob1", "Claim/c1")),
        "Coverage.000.ndjson": ndjson(fhir_cost.coverage("cov1", start="2020-01-01", end="2020-06-30")),
    }
    path = build(tmp_path_factory.mktemp("fhir_cost_cdm"), fhir_registry(), "site", [files])
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def test_each_billed_encounter_and_drug_has_one_cost_row(cdm):
    rows = cdm.execute(
        """
        SELECT c.cost_domain_id, c.total_charge, c.paid_by_payer, c.paid_by_patient,
               c.paid_patient_coinsurance, c.amount_allowed,
               coalesce(v.visit_source_value, d.drug_source_value) AS paid_for
        FROM cdm.cost c
        LEFT JOIN cdm.visit_occurrence v ON c.cost_domain_id = 'Visit' AND v.visit_occurrence_id = c.cost_event_id
        LEFT JOIN cdm.drug_exposure d ON c.cost_domain_id = 'Drug' AND d.drug_exposure_id = c.cost_event_id
        ORDER BY c.total_charge
        """
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("Drug", 9.99, None, None, None, None),  # the medication claim, on the drug exposure
        ("Visit", 40.0, None, None, None, None),  # a claim no EOB adjudicates: what was billed
        ("Visit", 100.0, 80.0, 12.5, 12.5, 62.5),  # e1: the EOB's adjudication, not also claim c1
    ]
    assert all(r[6] is not None for r in rows)  # each points at a row that exists


def test_coverage_is_a_payer_plan_period_that_costs_point_at(cdm):
    periods = cdm.execute(
        "SELECT payer_plan_period_id, payer_plan_period_start_date, payer_plan_period_end_date, "
        "payer_source_value, plan_source_value FROM cdm.payer_plan_period"
    ).fetchall()
    assert [p[1:] for p in periods] == [(date(2020, 1, 1), date(2020, 6, 30), "payer-1", "GOLD-PPO")]
    linked = cdm.execute("SELECT DISTINCT payer_plan_period_id FROM cdm.cost").fetchall()
    assert linked == [(periods[0][0],)]  # every cost falls on 2020-03-01, inside the period
