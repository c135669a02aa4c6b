"""Synthea insurance history and cost columns: payer_transitions -> enrollment -> PAYER_PLAN_PERIOD, the
cost columns of encounters, medications, procedures and immunizations -> cost -> COST."""

from __future__ import annotations

import duckdb

from rwe_assets import constants as c
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging.test_build import (
    ENCOUNTERS_HEADER,
    MEDICATIONS_HEADER,
    PATIENTS_HEADER,
    patient,
    synthea_registry,
)

PROCEDURES_HEADER = "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION\n"
IMMUNIZATIONS_HEADER = "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST\n"
# Synthea up to 3.0 (the bundled sample): START_YEAR/END_YEAR, holding a year or a timestamp.
TRANSITIONS_OLD = "PATIENT,MEMBERID,START_YEAR,END_YEAR,PAYER,SECONDARY_PAYER,OWNERSHIP,OWNERNAME\n"
# Synthea 3.1 and later: START_DATE/END_DATE, PLAN_OWNERSHIP, OWNER_NAME.
TRANSITIONS_NEW = "PATIENT,MEMBERID,START_DATE,END_DATE,PAYER,SECONDARY_PAYER,PLAN_OWNERSHIP,OWNER_NAME\n"
PAYERS_HEADER = (
    "Id,NAME,ADDRESS,CITY,STATE_HEADQUARTERED,ZIP,PHONE,AMOUNT_COVERED,AMOUNT_UNCOVERED,REVENUE,"
    "COVERED_ENCOUNTERS,UNCOVERED_ENCOUNTERS,COVERED_MEDICATIONS,UNCOVERED_MEDICATIONS,COVERED_PROCEDURES,"
    "UNCOVERED_PROCEDURES,COVERED_IMMUNIZATIONS,UNCOVERED_IMMUNIZATIONS,UNIQUE_CUSTOMERS,QOLS_AVG,MEMBER_MONTHS\n"
)


def payer(pid, name):
    return f"{pid},{name},,,,,,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n"


PAYERS = (
    PAYERS_HEADER + payer("pay-a", "Aetna") + payer("pay-m", "Medicaid") + payer("pay-none", "NO_INSURANCE")
)


def extract(transitions: str) -> dict[str, str]:
    """One patient, one encounter with a prescription (two dispenses), a procedure and a vaccine."""
    return {
        "patients.csv": PATIENTS_HEADER + patient("p1", birth="1980-01-02"),
        "encounters.csv": ENCOUNTERS_HEADER
        + "e1,2020-03-05T10:00:00Z,2020-03-05T11:00:00Z,p1,org1,prov1,pay-a,ambulatory,185345009,"
        "Encounter for symptom,85.55,900.00,700.00,,\n",
        "medications.csv": MEDICATIONS_HEADER
        + "2020-03-05T10:00:00Z,2020-04-04T10:00:00Z,p1,pay-a,e1,860975,Metformin,12.50,20.00,2,25.00,,\n",
        "procedures.csv": PROCEDURES_HEADER
        + "2020-03-05T10:10:00Z,2020-03-05T10:30:00Z,p1,e1,430193006,Medication Reconciliation,735.40,,\n",
        "immunizations.csv": IMMUNIZATIONS_HEADER
        + "2020-03-05T10:40:00Z,p1,e1,140,Influenza vaccine,140.52\n",
        "payers.csv": PAYERS,
        "payer_transitions.csv": transitions,
    }


def cdm(tmp_path, files):
    return duckdb.connect(str(build(tmp_path, synthea_registry(), "site", [files])), read_only=True)


def periods(con):
    return con.execute(
        """SELECT CAST(payer_plan_period_start_date AS VARCHAR), CAST(payer_plan_period_end_date AS VARCHAR),
                  payer_source_value, plan_source_value
           FROM cdm.payer_plan_period ORDER BY 1"""
    ).fetchall()


def test_payer_transitions_of_the_year_layout_become_payer_plan_periods(tmp_path):
    transitions = (
        TRANSITIONS_OLD
        # years as the oldest exports write them: Jan 1 of the first to Dec 31 of the last
        + "p1,m1,2015,2017,pay-m,,Guardian,Jane Doe\n"
        # timestamps under the old names, as Synthea 3.0 (the bundled sample) writes them
        + "p1,m2,2018-02-10T04:17:47Z,2021-06-20T04:17:47Z,pay-a,,Self,Ann Lee\n"
        # a span without insurance is no plan period
        + "p1,,2021-06-20T04:17:47Z,2022-01-01T04:17:47Z,pay-none,,,\n"
    )
    con = cdm(tmp_path, extract(transitions))
    assert periods(con) == [
        ("2015-01-01", "2017-12-31", "pay-m", None),
        ("2018-02-10", "2021-06-20", "pay-a", None),
    ]
    assert "Jane Doe" not in str(con.execute("SELECT * FROM cdm.payer_plan_period").fetchall())


def test_payer_transitions_of_the_date_layout_become_payer_plan_periods(tmp_path):
    transitions = (
        TRANSITIONS_NEW
        + "p1,m1,2019-01-15,2019-12-31,pay-m,,Guardian,Jane Doe\n"
        # the same payer again from the next day: one period
        + "p1,m1,2020-01-01,2020-12-31,pay-m,,Self,Ann Lee\n"
    )
    con = cdm(tmp_path, extract(transitions))
    assert periods(con) == [("2019-01-15", "2020-12-31", "pay-m", None)]
    # an EHR that sends insurance is no payer: its race text maps (not CMS's codes), its sex F/M
    assert con.execute("SELECT gender_concept_id, race_concept_id FROM cdm.person").fetchall() == [
        (c.FEMALE, c.WHITE)
    ]


def test_costs_are_linked_to_their_visit_drug_procedure_and_vaccine(tmp_path):
    con = cdm(tmp_path, extract(TRANSITIONS_NEW + "p1,m1,2020-01-01,2020-12-31,pay-a,,Self,\n"))
    rows = con.execute(
        """
        SELECT c.cost_domain_id,
               coalesce(v.visit_source_value, d.drug_source_value, p.procedure_source_value) AS what,
               c.total_charge, c.total_cost, c.paid_by_payer, c.paid_by_patient, c.total_paid,
               c.payer_plan_period_id = pp.payer_plan_period_id AS in_period
        FROM cdm.cost c
        LEFT JOIN cdm.visit_occurrence v ON c.cost_domain_id = 'Visit' AND v.visit_occurrence_id = c.cost_event_id
        LEFT JOIN cdm.drug_exposure d ON c.cost_domain_id = 'Drug' AND d.drug_exposure_id = c.cost_event_id
        LEFT JOIN cdm.procedure_occurrence p
               ON c.cost_domain_id = 'Procedure' AND p.procedure_occurrence_id = c.cost_event_id
        CROSS JOIN cdm.payer_plan_period pp
        ORDER BY c.cost_domain_id, what
        """
    ).fetchall()
    assert rows == [
        # the vaccine (CVX 140) is a drug in OMOP; its BASE_COST is its charge, no payer split stated
        ("Drug", "140", 140.52, 140.52, None, None, None, True),
        # the prescription: TOTALCOST (2 dispenses of 12.50), PAYER_COVERAGE, the rest the patient's
        ("Drug", "860975", 25.0, 25.0, 20.0, 5.0, None, True),
        ("Procedure", "430193006", 735.4, 735.4, None, None, None, True),
        # the encounter's claim: TOTAL_CLAIM_COST, PAYER_COVERAGE, the rest the patient's
        ("Visit", "ambulatory", 900.0, 900.0, 700.0, 200.0, None, True),
    ]


def test_the_bundled_sample_yields_payer_plan_periods_and_costs(tmp_path):
    sample = REPO_DIR / "data" / "sample" / "synthea27"
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(sample.glob("*.csv"))}
    con = cdm(tmp_path, files)
    counts = dict(con.execute("SELECT cost_domain_id, count(*) FROM cdm.cost GROUP BY ALL").fetchall())
    # every encounter, prescription, procedure and vaccine of the 27 patients (604 + 663 + 249 + 29 rows;
    # identical copies merge, as their events do)
    assert counts["Visit"] > 0 and counts["Drug"] > 0 and counts["Procedure"] > 0
    periods_n = con.execute("SELECT count(*) FROM cdm.payer_plan_period").fetchone()[0]
    assert periods_n > 0
    print(f"COST rows by domain: {counts}; PAYER_PLAN_PERIOD rows: {periods_n}")


def test_a_death_ends_the_insurance_span(tmp_path):
    files = extract(
        TRANSITIONS_OLD
        + "p1,m1,2015,2030,pay-a,,Self,\n"  # runs to 2030, the person died in 2021
        + "p1,m1,2022,2030,pay-m,,Self,\n"  # starts after death
    )
    files["patients.csv"] = PATIENTS_HEADER + patient("p1", birth="1980-01-02", death="2021-06-15")
    with cdm(tmp_path, files) as con:
        periods = con.execute(
            "SELECT payer_plan_period_start_date::VARCHAR, payer_plan_period_end_date::VARCHAR, payer_source_value "
            "FROM cdm.payer_plan_period"
        ).fetchall()
        left_out = con.execute(
            "SELECT reason_code, row_count FROM results.staging_outcomes WHERE source_entity = 'payer_transitions'"
        ).fetchall()
    assert periods == [("2015-01-01", "2021-06-15", "pay-a")]
    assert left_out == [("DEATH_BEFORE_ENROLLMENT", 1)]
