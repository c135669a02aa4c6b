"""The DE-SynPUF layout: file names, column lists (DE-SynPUF's, plus the CMS MBSF monthly columns
of the beneficiary summary), claim id prefixes and which encounters go to which claim file."""

from __future__ import annotations

from rwe_assets.synthetic.clinical.timeline import Kind
from rwe_assets.synthetic.config import CLAIMS_START, EXTRACT_DATE

SOURCE = "payer"
LOCAL_DX_PREFIX = "XX"  # made-up diagnosis codes: XX + 6 digits
LOCAL_NDC_PREFIX = "00000"  # made-up NDCs: labeler 00000 + 6 digits
YEARS = tuple(range(CLAIMS_START.year, EXTRACT_DATE.year))


def _numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(1, count + 1)]


SP_FLAGS = (
    "SP_ALZHDMTA",
    "SP_CHF",
    "SP_CHRNKIDN",
    "SP_CNCR",
    "SP_COPD",
    "SP_DEPRESSN",
    "SP_DIABETES",
    "SP_ISCHMCHT",
    "SP_OSTEOPRS",
    "SP_RA_OA",
    "SP_STRKETIA",
)

# chronic-condition flags of the beneficiary summary and the catalogue conditions behind them
SP_CONDITIONS = {
    "SP_CHRNKIDN": ("ckd_stage_2",),
    "SP_CNCR": ("breast_cancer", "lung_cancer"),
    "SP_COPD": ("copd",),
    "SP_DIABETES": ("diabetes_t2",),
    "SP_ISCHMCHT": ("coronary_heart_disease",),
    "SP_OSTEOPRS": ("osteoporosis",),
    "SP_RA_OA": ("osteoarthritis_knee", "osteoarthritis_hip"),
}

BENEFICIARY = [
    "DESYNPUF_ID",
    "BENE_BIRTH_DT",
    "BENE_DEATH_DT",
    "BENE_SEX_IDENT_CD",
    "BENE_RACE_CD",
    "BENE_ESRD_IND",
    "SP_STATE_CODE",
    "BENE_COUNTY_CD",
    "BENE_HI_CVRAGE_TOT_MONS",
    "BENE_SMI_CVRAGE_TOT_MONS",
    "BENE_HMO_CVRAGE_TOT_MONS",
    "PLAN_CVRG_MOS_NUM",
    *SP_FLAGS,
    "MEDREIMB_IP",
    "BENRES_IP",
    "PPPYMT_IP",
    "MEDREIMB_OP",
    "BENRES_OP",
    "PPPYMT_OP",
    "MEDREIMB_CAR",
    "BENRES_CAR",
    "PPPYMT_CAR",
]

MONTHLY = [
    *[f"MDCR_ENTLMT_BUYIN_IND_{m:02d}" for m in range(1, 13)],
    *[f"HMO_IND_{m:02d}" for m in range(1, 13)],
    *[f"PTD_CNTRCT_ID_{m:02d}" for m in range(1, 13)],
]

CARRIER = [
    "DESYNPUF_ID",
    "CLM_ID",
    "CLM_FROM_DT",
    "CLM_THRU_DT",
    *_numbered("ICD9_DGNS_CD", 8),
    *_numbered("PRF_PHYSN_NPI", 13),
    *_numbered("TAX_NUM", 13),
    *_numbered("HCPCS_CD", 13),
    *_numbered("LINE_NCH_PMT_AMT", 13),
    *_numbered("LINE_BENE_PTB_DDCTBL_AMT", 13),
    *_numbered("LINE_BENE_PRMRY_PYR_PD_AMT", 13),
    *_numbered("LINE_COINSRNC_AMT", 13),
    *_numbered("LINE_ALOWD_CHRG_AMT", 13),
    *_numbered("LINE_PRCSG_IND_CD", 13),
    *_numbered("LINE_ICD9_DGNS_CD", 13),
]

INPATIENT = [
    "DESYNPUF_ID",
    "CLM_ID",
    "SEGMENT",
    "CLM_FROM_DT",
    "CLM_THRU_DT",
    "PRVDR_NUM",
    "CLM_PMT_AMT",
    "NCH_PRMRY_PYR_CLM_PD_AMT",
    "AT_PHYSN_NPI",
    "OP_PHYSN_NPI",
    "OT_PHYSN_NPI",
    "CLM_ADMSN_DT",
    "ADMTNG_ICD9_DGNS_CD",
    "CLM_PASS_THRU_PER_DIEM_AMT",
    "NCH_BENE_IP_DDCTBL_AMT",
    "NCH_BENE_PTA_COINSRNC_LBLTY_AM",
    "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM",
    "CLM_UTLZTN_DAY_CNT",
    "NCH_BENE_DSCHRG_DT",
    "CLM_DRG_CD",
    *_numbered("ICD9_DGNS_CD", 10),
    *_numbered("ICD9_PRCDR_CD", 6),
    *_numbered("HCPCS_CD", 45),
]

OUTPATIENT = [
    "DESYNPUF_ID",
    "CLM_ID",
    "SEGMENT",
    "CLM_FROM_DT",
    "CLM_THRU_DT",
    "PRVDR_NUM",
    "CLM_PMT_AMT",
    "NCH_PRMRY_PYR_CLM_PD_AMT",
    "AT_PHYSN_NPI",
    "OP_PHYSN_NPI",
    "OT_PHYSN_NPI",
    "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM",
    *_numbered("ICD9_DGNS_CD", 10),
    *_numbered("ICD9_PRCDR_CD", 6),
    "NCH_BENE_PTB_DDCTBL_AMT",
    "NCH_BENE_PTB_COINSRNC_AMT",
    "ADMTNG_ICD9_DGNS_CD",
    *_numbered("HCPCS_CD", 45),
]

PDE = [
    "DESYNPUF_ID",
    "PDE_ID",
    "SRVC_DT",
    "PROD_SRVC_ID",
    "QTY_DSPNSD_NUM",
    "DAYS_SUPLY_NUM",
    "PTNT_PAY_AMT",
    "TOT_RX_CST_AMT",
]

MEMBERS = [
    "DESYNPUF_ID",
    "FIRST_NAME",
    "MIDDLE_NAME",
    "LAST_NAME",
    "BIRTH_DATE",
    "SEX",
    "SSN",
    "ADDRESS",
    "CITY",
    "STATE",
    "ZIP",
    "PHONE",
]

SPAN_YEARS = f"{YEARS[0]}_to_{YEARS[-1]}"

FILES = {
    "inpatient_claims": (f"DE1_0_{SPAN_YEARS}_Inpatient_Claims_Sample_1.csv", INPATIENT),
    "outpatient_claims": (f"DE1_0_{SPAN_YEARS}_Outpatient_Claims_Sample_1.csv", OUTPATIENT),
    "carrier_claims": (f"DE1_0_{SPAN_YEARS}_Carrier_Claims_Sample_1.csv", CARRIER),
    "prescription_drug_events": (f"DE1_0_{SPAN_YEARS}_Prescription_Drug_Events_Sample_1.csv", PDE),
    "members": ("members.csv", MEMBERS),
}

for _year in YEARS:
    FILES[f"beneficiary_summary_{_year}"] = (
        f"DE1_0_{_year}_Beneficiary_Summary_File_Sample_1.csv",
        BENEFICIARY + MONTHLY,
    )

CLAIM_PREFIX = {
    "inpatient_claims": "1",
    "outpatient_claims": "2",
    "carrier_claims": "3",
    "prescription_drug_events": "4",
}

CARRIER_KINDS = (Kind.WELLNESS, Kind.FOLLOWUP, Kind.DIAGNOSIS, Kind.ACUTE)

OUTPATIENT_KINDS = (Kind.EMERGENCY, Kind.CANCER_DX, Kind.SCREENING, Kind.CHEMO)

SITE_PROVIDER_NUMBERS = ("220071", "220116")


def file_name(key: str, compress: bool) -> str:
    name = FILES[key][0]
    return name + ".gz" if compress else name


def entity_of(key: str) -> str:
    return "beneficiary_summary" if key.startswith("beneficiary_summary") else key
