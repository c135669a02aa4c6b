"""Claims into the CDM: payer_plan_period from enrollment (gaps, plan changes, overlaps of two member
ids of one person), claim visits, ranked diagnoses, pharmacy fills, cost linked to its rows, and
observation periods that follow enrollment; an ICD-9-era claim maps through its ICD-9-CM codes."""

from __future__ import annotations

import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import intermediates
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.staging.test_synpuf import beneficiary, csv_text, stage_files

MEMBERS = "DESYNPUF_ID,FIRST_NAME,MIDDLE_NAME,LAST_NAME,BIRTH_DATE,SEX,SSN,ADDRESS,CITY,STATE,ZIP,PHONE\n"
LISINOPRIL_10 = 19080128  # RxNorm 314076, the drug the synthetic NDC 99101031410 stands for


def member(pid, first="Ann", birth="19500101"):
    return f"{pid},{first},,Lee,{birth},M,900-00-0001,1 Main St,Boston,MA,02110,555-000-0000\n"


FIRST_BATCH = {
    "DE1_0_2019_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 13)})]
    ),
    # 2020: January to March on plan H1, a gap April to June, then plan H2
    "DE1_0_2020_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("AAA", {1: "H1", 2: "H1", 3: "H1"} | {m: "H2" for m in range(7, 13)})]
    ),
    # an ICD-9-era beneficiary in the real layout: no monthly columns set, 12 months counted
    "DE1_0_2010_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [{"DESYNPUF_ID": "CCC", "BENE_BIRTH_DT": "19400101", "BENE_SEX_IDENT_CD": "2",
                         "BENE_RACE_CD": "2", "PLAN_CVRG_MOS_NUM": "12"}]
    ),
    "DE1_0_2008_to_2024_Inpatient_Claims_Sample_1.csv": csv_text(
        "Inpatient",
        [  # one stay billed in two segments; a 2010 claim coded in ICD-9-CM
            {"DESYNPUF_ID": "AAA", "CLM_ID": "i1", "SEGMENT": "1", "CLM_FROM_DT": "20190301", "CLM_THRU_DT": "20190305",
             "CLM_ADMSN_DT": "20190301", "CLM_PMT_AMT": "9000", "NCH_BENE_IP_DDCTBL_AMT": "1000",
             "CLM_DRG_CD": "638", "ICD9_DGNS_CD_1": "E119", "ICD9_DGNS_CD_2": "I10"},
            {"DESYNPUF_ID": "AAA", "CLM_ID": "i1", "SEGMENT": "2", "CLM_FROM_DT": "20190305", "CLM_THRU_DT": "20190308",
             "NCH_BENE_DSCHRG_DT": "20190308", "CLM_PMT_AMT": "500", "ICD9_DGNS_CD_1": "E119"},
            {"DESYNPUF_ID": "CCC", "CLM_ID": "i9", "SEGMENT": "1", "CLM_FROM_DT": "20100601", "CLM_THRU_DT": "20100603",
             "CLM_PMT_AMT": "4000", "ICD9_DGNS_CD_1": "25000", "ICD9_DGNS_CD_2": "4019"},
        ],
    ),
    "DE1_0_2016_to_2024_Carrier_Claims_Sample_1.csv": csv_text(
        "Carrier",
        [{"DESYNPUF_ID": "AAA", "CLM_ID": "k1", "CLM_FROM_DT": "20190510", "CLM_THRU_DT": "20190510",
          "ICD9_DGNS_CD_1": "E785", "HCPCS_CD_1": "99213", "HCPCS_CD_2": "80061",
          "LINE_NCH_PMT_AMT_1": "70", "LINE_COINSRNC_AMT_1": "18", "LINE_NCH_PMT_AMT_2": "15"}],
    ),
    "DE1_0_2016_to_2024_Prescription_Drug_Events_Sample_1.csv": csv_text(
        "Prescription",
        [{"DESYNPUF_ID": "AAA", "PDE_ID": "d1", "SRVC_DT": "20190601", "PROD_SRVC_ID": "99101031410",
          "QTY_DSPNSD_NUM": "90", "DAYS_SUPLY_NUM": "90", "PTNT_PAY_AMT": "2", "TOT_RX_CST_AMT": "12"}],
    ),
    "members.csv": MEMBERS + member("AAA") + member("CCC", first="Cy", birth="19400101"),
}  # fmt: skip
# Later, the same person re-enrolled under a second member id, on plan H3 from February to April 2020:
# those months overlap AAA's H1 months and the later ingest wins them.
SECOND_BATCH = {
    "DE1_0_2020_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("BBB", {2: "H3", 3: "H3", 4: "H3"})]
    ),
    "members.csv": MEMBERS + member("BBB"),
}


@pytest.fixture(scope="module")
def linked_lake(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("claims")
    lake_dir, report = stage_files(tmp_path, [("b1", FIRST_BATCH), ("b2", SECOND_BATCH)])
    assert all(r.unaccounted == 0 for r in report.reconciliation)
    con = staging_connection()
    con.register(
        "person_pii", lake.open_table(lake.table_path(lake_dir, "staging", "person_pii")).to_pyarrow_dataset()
    )
    build_crosswalk(con, lake_dir, "test-key")
    return lake_dir


@pytest.fixture(scope="module")
def cdm(linked_lake):
    built = build_cdm(linked_lake, REPO_DIR / "vocab", linked_lake.parent / "warehouse")
    with duckdb.connect(str(built.path), read_only=True) as db:
        yield db, built


def person_of(db, birth_year):
    return db.execute("SELECT person_id FROM cdm.person WHERE year_of_birth = ?", [birth_year]).fetchone()[0]


def test_enrollment_merges_contiguous_months_and_splits_plan_changes_and_gaps(cdm):
    db, _ = cdm
    aaa = person_of(db, 1950)
    periods = db.execute(
        "SELECT payer_plan_period_start_date::VARCHAR, payer_plan_period_end_date::VARCHAR, plan_source_value "
        "FROM cdm.payer_plan_period WHERE person_id = ? ORDER BY 1",
        [aaa],
    ).fetchall()
    assert periods == [
        ("2019-01-01", "2020-01-31", "H1"),
        ("2020-02-01", "2020-04-30", "H3"),
        ("2020-07-01", "2020-12-31", "H2"),
    ]
    observed = db.execute(
        "SELECT observation_period_start_date::VARCHAR, observation_period_end_date::VARCHAR, period_type_concept_id "
        "FROM cdm.observation_period WHERE person_id = ? ORDER BY 1",
        [aaa],
    ).fetchall()
    enrolled = c.PERIOD_WHILE_ENROLLED_IN_INSURANCE
    assert observed == [("2019-01-01", "2020-04-30", enrolled), ("2020-07-01", "2020-12-31", enrolled)]


def test_claim_segments_are_one_stay_and_diagnoses_keep_their_rank(cdm):
    db, _ = cdm
    aaa = person_of(db, 1950)
    visits = db.execute(
        "SELECT visit_concept_id, visit_start_date::VARCHAR, visit_end_date::VARCHAR, visit_type_concept_id "
        "FROM cdm.visit_occurrence WHERE person_id = ? ORDER BY 2",
        [aaa],
    ).fetchall()
    assert visits == [
        (c.INPATIENT_VISIT, "2019-03-01", "2019-03-08", c.CLAIM),
        (c.OUTPATIENT_VISIT, "2019-05-10", "2019-05-10", c.CLAIM),
    ]
    conditions = db.execute(
        "SELECT condition_source_value, condition_concept_id, condition_status_concept_id, condition_type_concept_id "
        "FROM cdm.condition_occurrence WHERE person_id = ? ORDER BY condition_start_date, 3, 1",
        [aaa],
    ).fetchall()
    assert conditions == [
        ("E11.9", 201826, c.PRIMARY_DIAGNOSIS, c.CLAIM),  # segment 1, from 2019-03-01
        ("I10", 320128, c.SECONDARY_DIAGNOSIS, c.CLAIM),
        ("E11.9", 201826, c.PRIMARY_DIAGNOSIS, c.CLAIM),  # segment 2, from 2019-03-05
        ("E78.5", 432867, c.PRIMARY_DIAGNOSIS, c.CLAIM),
    ]


def test_icd9_era_claim_maps_through_icd9cm(cdm):
    db, _ = cdm
    ccc = person_of(db, 1940)
    rows = db.execute(
        "SELECT condition_source_value, condition_concept_id FROM cdm.condition_occurrence WHERE person_id = ? ORDER BY 1",
        [ccc],
    ).fetchall()
    assert rows == [("250.00", 201826), ("401.9", 320128)]
    assert db.execute(
        "SELECT payer_plan_period_start_date::VARCHAR, payer_plan_period_end_date::VARCHAR "
        "FROM cdm.payer_plan_period WHERE person_id = ?",
        [ccc],
    ).fetchall() == [("2010-01-01", "2010-12-31")]
    assert db.execute(
        "SELECT gender_concept_id, race_concept_id FROM cdm.person WHERE person_id = ?", [ccc]
    ).fetchone() == (
        c.FEMALE,
        c.BLACK_OR_AFRICAN_AMERICAN,
    )


def test_fills_become_pharmacy_claim_exposures_with_supply(cdm):
    db, _ = cdm
    fill = db.execute(
        "SELECT drug_concept_id, drug_exposure_start_date::VARCHAR, drug_exposure_end_date::VARCHAR, days_supply, "
        "quantity, drug_type_concept_id FROM cdm.drug_exposure"
    ).fetchall()
    # a 90-day supply dispensed on June 1 lasts through August 29 (start + days_supply - 1)
    assert fill == [(LISINOPRIL_10, "2019-06-01", "2019-08-29", 90, 90.0, c.PHARMACY_CLAIM)]


def test_costs_are_linked_to_their_rows_and_plan_periods(cdm):
    db, built = cdm
    costs = db.execute(
        """
        SELECT x.cost_domain_id, x.cost_type_concept_id, x.paid_by_payer, x.paid_by_patient,
               coalesce(v.visit_start_date, p.procedure_date, d.drug_exposure_start_date)::VARCHAR AS day,
               coalesce(p.procedure_source_value, d.drug_source_value, x.drg_source_value) AS what,
               pp.plan_source_value
        FROM cdm.cost x
        LEFT JOIN cdm.visit_occurrence v ON x.cost_domain_id = 'Visit' AND v.visit_occurrence_id = x.cost_event_id
        LEFT JOIN cdm.procedure_occurrence p ON x.cost_domain_id = 'Procedure' AND p.procedure_occurrence_id = x.cost_event_id
        LEFT JOIN cdm.drug_exposure d ON x.cost_domain_id = 'Drug' AND d.drug_exposure_id = x.cost_event_id
        LEFT JOIN cdm.payer_plan_period pp USING (payer_plan_period_id)
        ORDER BY day, what, paid_by_payer
        """
    ).fetchall()
    assert costs == [
        ("Visit", c.CLAIM, 4000.0, 0.0, "2010-06-01", None, None),
        ("Visit", c.CLAIM, 9000.0, 1000.0, "2019-03-01", "638", "H1"),
        ("Visit", c.CLAIM, 500.0, 0.0, "2019-03-01", None, "H1"),  # segment 2: the same stay
        ("Procedure", c.CLAIM, 15.0, 0.0, "2019-05-10", "80061", "H1"),
        ("Procedure", c.CLAIM, 70.0, 18.0, "2019-05-10", "99213", "H1"),
        ("Drug", c.PHARMACY_CLAIM, 10.0, 2.0, "2019-06-01", "99101031410", "H1"),
    ]
    reconciled = {r.cdm_table: r for r in built.reconciliation}
    assert reconciled["cost"].unaccounted == 0 and reconciled["cost"].cdm_rows == 6


def test_costs_linked_a_part_at_a_time_are_the_costs_linked_at_once(cdm, linked_lake, tmp_path, monkeypatch):
    """cost.sql run a part at a time (as at 1M persons): here a part per cost line, where a stay's two
    segments and a claim's two lines make some parts empty."""
    monkeypatch.setitem(intermediates.PARTS, "cost", ("stg_cost", 1))
    built = build_cdm(linked_lake, REPO_DIR / "vocab", tmp_path / "warehouse")
    query = "SELECT * EXCLUDE (cost_id) FROM cdm.cost ORDER BY ALL"
    with duckdb.connect(str(built.path), read_only=True) as db:
        assert db.execute(query).fetchall() == cdm[0].execute(query).fetchall()
    assert {r.cdm_table: r.unaccounted for r in built.reconciliation}["cost"] == 0
