"""Staging of claims (profile synpuf): real DE-SynPUF (ICD-9) and the generator's layout (ICD-10,
monthly enrollment, member file), with hand-built claims whose staged rows are written here."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.settings import REPO_DIR

SAMPLE = REPO_DIR / "rwe_assets_tests" / "data" / "synpuf_sample" / "DE1_0_sample_0"
MONTHLY = [f"{family}_{m:02d}" for family in ("MDCR_ENTLMT_BUYIN_IND", "PTD_CNTRCT_ID") for m in range(1, 13)]


def header(kind: str) -> list[str]:
    """The real DE-SynPUF header of a file kind (beneficiary gets the generator's monthly columns)."""
    name = next(p for p in SAMPLE.iterdir() if kind.lower() in p.name.lower())
    columns = next(csv.reader(name.open(encoding="utf-8")))
    return columns + MONTHLY if kind == "Beneficiary" else columns


def csv_text(kind: str, rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header(kind), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def beneficiary(pid, year_months: dict[int, str], birth="19500101", death="", sex="1"):
    """One beneficiary-year row: months (1..12) enrolled with a Part D contract each."""
    row = {"DESYNPUF_ID": pid, "BENE_BIRTH_DT": birth, "BENE_DEATH_DT": death, "BENE_SEX_IDENT_CD": sex,
           "BENE_RACE_CD": "1", "PLAN_CVRG_MOS_NUM": str(len(year_months))}  # fmt: skip
    for month in range(1, 13):
        row[f"MDCR_ENTLMT_BUYIN_IND_{month:02d}"] = "3" if month in year_months else "0"
        row[f"PTD_CNTRCT_ID_{month:02d}"] = year_months.get(month, "0")
    return row


def payer_registry() -> SourceRegistry:
    return SourceRegistry((load_registry().get("payer"),))


def stage_files(tmp_path: Path, batches: list[tuple[str, dict[str, str]]]):
    lake_dir, landing, registry = tmp_path / "lake", tmp_path / "landing", payer_registry()
    for batch, files in batches:
        folder = landing / "payer" / batch
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        ingest_batch(lake_dir, landing, registry.get("payer"), batch)
    return lake_dir, build_staging(lake_dir, registry)


def staged(lake_dir, name):
    return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()


def quarantine(lake_dir):
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "_quarantine")).to_pylist()
    return sorted((r["staging_table"], r["_source_entity"], r["reason_code"], r["field"]) for r in rows)


def assert_reconciled(report):
    assert report.reconciliation and all(r.unaccounted == 0 for r in report.reconciliation)


def test_real_desynpuf_sample_loads_with_icd9_codes_and_year_enrollment(tmp_path):
    landing = tmp_path / "landing" / "payer" / "b1"
    shutil.copytree(SAMPLE, landing)
    registry = payer_registry()
    ingest_batch(tmp_path / "lake", tmp_path / "landing", registry.get("payer"), "b1")
    lake_dir, report = tmp_path / "lake", build_staging(tmp_path / "lake", registry)
    assert_reconciled(report)
    assert report.quarantine_reasons == {}
    assert report.row_counts["person_pii"] == 0  # real DE-SynPUF has no member file
    persons = {r["source_person_id"]: r for r in staged(lake_dir, "person_source")}
    assert str(persons["0002056B40CEE448"]["birth_date"]) == "1920-10-01"
    events = {(r["vocabulary_id"], r["code"]) for r in staged(lake_dir, "event")}
    assert {("ICD9CM", "V07.51"), ("ICD9CM", "250.00"), ("ICD9CM", "715.37"), ("CPT4", "66984")} <= events
    assert ("NDC", "61392018345") in events
    spans = sorted(
        (r["source_person_id"], str(r["start_date"]), str(r["end_date"]))
        for r in staged(lake_dir, "enrollment")
    )
    # no monthly columns: the year's first n covered months (n = 12 here), one span per year file
    assert spans[:3] == [("0002056B40CEE448", f"{y}-01-01", f"{y}-12-31") for y in (2008, 2009, 2010)]


CARRIER = [
    # a gap before the first diagnosis, a dotted code, an ICD-9-shaped code on a 2020 claim, 2 lines
    {"DESYNPUF_ID": "AAA", "CLM_ID": "c1", "CLM_FROM_DT": "20200305", "CLM_THRU_DT": "20200305",
     "ICD9_DGNS_CD_2": "I10", "ICD9_DGNS_CD_3": "E11.9", "ICD9_DGNS_CD_4": "4019",
     "PRF_PHYSN_NPI_1": "12345", "HCPCS_CD_1": "99213", "HCPCS_CD_2": "G0008",
     "LINE_NCH_PMT_AMT_1": "80", "LINE_COINSRNC_AMT_1": "20", "LINE_ALOWD_CHRG_AMT_1": "100",
     "LINE_NCH_PMT_AMT_2": "15"},
    # thru date before from date: the claim, its codes and its money are quarantined
    {"DESYNPUF_ID": "AAA", "CLM_ID": "c2", "CLM_FROM_DT": "20200310", "CLM_THRU_DT": "20200301",
     "ICD9_DGNS_CD_1": "J209", "HCPCS_CD_1": "99213", "LINE_NCH_PMT_AMT_1": "50"},
    # a negative payment: the money is quarantined, the claim and its codes are kept
    {"DESYNPUF_ID": "AAA", "CLM_ID": "c3", "CLM_FROM_DT": "20200401", "CLM_THRU_DT": "20200401",
     "ICD9_DGNS_CD_1": "N390", "HCPCS_CD_1": "81001", "LINE_NCH_PMT_AMT_1": "-5"},
    # no code at all
    {"DESYNPUF_ID": "AAA", "CLM_ID": "c4", "CLM_FROM_DT": "20200402", "CLM_THRU_DT": "20200402"},
]  # fmt: skip


def generated_batch() -> dict[str, str]:
    return {
        "DE1_0_2020_Beneficiary_Summary_File_Sample_1.csv": csv_text(
            "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 7)} | {9: "H2", 10: "H2"})]
        ),
        "DE1_0_2016_to_2024_Carrier_Claims_Sample_1.csv": csv_text("Carrier", CARRIER),
        "DE1_0_2016_to_2024_Prescription_Drug_Events_Sample_1.csv": csv_text(
            "Prescription",
            [
                {
                    "DESYNPUF_ID": "AAA",
                    "PDE_ID": "d1",
                    "SRVC_DT": "20200301",
                    "PROD_SRVC_ID": "99101031410",
                    "QTY_DSPNSD_NUM": "90",
                    "DAYS_SUPLY_NUM": "90",
                    "PTNT_PAY_AMT": "2",
                    "TOT_RX_CST_AMT": "12",
                }
            ],
        ),
        "members.csv": "DESYNPUF_ID,FIRST_NAME,MIDDLE_NAME,LAST_NAME,BIRTH_DATE,SEX,SSN,ADDRESS,CITY,STATE,ZIP,PHONE\n"
        "AAA,Ann,,Lee,19500101,M,900-00-0001,1 Main St,Boston,MA,02110,555-000-0000\n",
    }


def test_generated_layout_claims_are_unpivoted_ranked_and_checked(tmp_path):
    lake_dir, report = stage_files(tmp_path, [("b1", generated_batch())])
    assert_reconciled(report)
    c1 = sorted(
        (r["record_key"].split("#")[1], r["event_kind"], r["vocabulary_id"], r["code"], r["condition_status"])
        for r in staged(lake_dir, "event")
        if r["visit_key"] == "carrier_claims|c1|1"
    )
    assert c1 == [
        ("HCPCS_CD_1", "procedure", "CPT4", "99213", None),
        ("HCPCS_CD_2", "procedure", "HCPCS", "G0008", None),
        ("ICD9_DGNS_CD_2", "condition", "ICD10CM", "I10", "primary"),
        ("ICD9_DGNS_CD_3", "condition", "ICD10CM", "E11.9", "secondary"),
        ("ICD9_DGNS_CD_4", "condition", "ICD9CM", "401.9", "secondary"),
    ]
    visits = {r["record_key"]: r for r in staged(lake_dir, "visit")}
    assert set(visits) == {"carrier_claims|c1|1", "carrier_claims|c3|1", "carrier_claims|c4|1"}
    assert visits["carrier_claims|c1|1"]["provider_key"] is None  # '12345' is not an NPI
    assert quarantine(lake_dir) == [
        ("cost", "carrier_claims", "END_BEFORE_START", "CLM_THRU_DT"),
        ("cost", "carrier_claims", "NEGATIVE_AMOUNT", "LINE_NCH_PMT_AMT_1"),
        ("cost", "carrier_claims", "NO_CLAIM_LINE", "HCPCS_CD_1"),
        ("event", "carrier_claims", "END_BEFORE_START", "CLM_THRU_DT"),
        ("event", "carrier_claims", "END_BEFORE_START", "CLM_THRU_DT"),
        ("event", "carrier_claims", "MISSING_CODE", "ICD9_DGNS_CD_1"),
        ("visit", "carrier_claims", "END_BEFORE_START", "CLM_THRU_DT"),
    ]
    costs = {r["record_key"]: r for r in staged(lake_dir, "cost")}
    line1 = costs["carrier_claims|c1|1#cost#1"]
    assert (line1["event_key"], line1["paid_by_payer"], line1["paid_by_patient"], line1["amount_allowed"]) == (
        "carrier_claims|c1|1#HCPCS_CD_1", 80.0, 20.0, 100.0)  # fmt: skip
    fill = costs["prescription_drug_events|d1#cost"]
    assert (fill["total_cost"], fill["paid_by_patient"], fill["paid_by_payer"]) == (12.0, 2.0, 10.0)
    drug = next(r for r in staged(lake_dir, "event") if r["event_kind"] == "drug")
    assert (drug["code"], drug["quantity"], drug["days_supply"], drug["claim_type"]) == (
        "99101031410",
        90.0,
        90,
        "pharmacy",
    )
    spans = sorted(
        (str(r["start_date"]), str(r["end_date"]), r["plan_source_value"])
        for r in staged(lake_dir, "enrollment")
    )
    assert spans == [("2020-01-01", "2020-06-30", "H1"), ("2020-09-01", "2020-10-31", "H2")]
    assert [r["given_name"] for r in staged(lake_dir, "person_pii")] == ["Ann"]


def test_yearly_beneficiary_rows_are_one_person_and_death_ends_enrollment(tmp_path):
    batch = {
        "DE1_0_2019_Beneficiary_Summary_File_Sample_1.csv": csv_text(
            "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 13)})]
        ),
        "DE1_0_2020_Beneficiary_Summary_File_Sample_1.csv": csv_text(
            "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 6)}, death="20200515")]
        ),
    }
    lake_dir, report = stage_files(tmp_path, [("b1", batch)])
    assert_reconciled(report)
    (person,) = staged(lake_dir, "person_source")
    assert str(person["death_date"]) == "2020-05-15"  # the 2019 row carries it too, so the copies merge
    merged = lake.read_table(lake.table_path(lake_dir, "staging", "_merged")).to_pylist()
    assert [r["reason_code"] for r in merged] == ["DUPLICATE_IDENTICAL"]
    spans = sorted((str(r["start_date"]), str(r["end_date"])) for r in staged(lake_dir, "enrollment"))
    assert spans == [("2019-01-01", "2019-12-31"), ("2020-01-01", "2020-05-15")]


def test_monthly_enrollment_spans_break_on_plan_change_and_gap(tmp_path):
    """Spans are runs of enrolled months with one plan: a plan change or an unenrolled month ends one;
    blank or 0 plans are none (one span); a row with no enrolled month is NO_ENROLLED_MONTH."""
    plans = {1: "H1", 2: "H1", 3: "H2", 5: "H2", 6: "H2", 7: "0", 8: ""}
    none = beneficiary("CCC", {})
    batch = {
        "DE1_0_2019_Beneficiary_Summary_File_Sample_1.csv": csv_text(
            "Beneficiary", [beneficiary("BBB", plans), none]
        ),
    }
    lake_dir, report = stage_files(tmp_path, [("b1", batch)])
    assert_reconciled(report)
    spans = sorted(
        (r["source_person_id"], str(r["start_date"]), str(r["end_date"]), r["plan_source_value"])
        for r in staged(lake_dir, "enrollment")
    )
    assert spans == [
        ("BBB", "2019-01-01", "2019-02-28", "H1"),
        ("BBB", "2019-03-01", "2019-03-31", "H2"),
        ("BBB", "2019-05-01", "2019-06-30", "H2"),
        ("BBB", "2019-07-01", "2019-08-31", None),
    ]
    assert (
        "enrollment",
        "beneficiary_summary",
        "NO_ENROLLED_MONTH",
        "MDCR_ENTLMT_BUYIN_IND_01",
    ) in quarantine(lake_dir)
