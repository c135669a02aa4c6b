"""The payer: a claims extract in the CMS DE-SynPUF layout, plus the member file with the PII the
payer holds.

Files (DE-SynPUF names, sample number 1): a beneficiary summary per calendar year, inpatient,
outpatient and carrier claims, prescription drug events, and members.csv. Column names are
DE-SynPUF's, so diagnosis columns keep their ICD9_ names; the values are ICD-10-CM, written dotless
as claims carry them (every claim is dated after 2015-10-01). Dates are YYYYMMDD; amounts whole
dollars. The beneficiary summary also carries, per month, the CMS Master Beneficiary Summary File
indicators MDCR_ENTLMT_BUYIN_IND_01..12, HMO_IND_01..12 and PTD_CNTRCT_ID_01..12, so enrollment
gaps and plan changes are exact to the month.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.clinical import Kind
from rwe_assets.synthetic.config import CLAIMS_START, EXTRACT_DATE
from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    corrupt_dates,
    localize,
    masks,
    no_masks,
    render_csv,
)
from rwe_assets.synthetic.membership import CONTRACTS, MAX_SPANS, enrolled, month_of
from rwe_assets.synthetic.util import (
    DAY_CLAIMS,
    DAY_END,
    SECONDS_PER_DAY,
    YEAR,
    compact_dates,
    digits,
    integers,
    take,
)

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


def _frame(columns: list[str], values: dict, height: int) -> pl.DataFrame:
    data = {}
    for name in columns:
        value = values.get(name, "")
        data[name] = (
            value if isinstance(value, pl.Series) else pl.repeat(value, height, eager=True, dtype=pl.String)
        )
    return pl.DataFrame(data)


class _Codes:
    """Dotless ICD-10-CM and HCPCS code tables of the chunk, by index."""

    def __init__(self, chunk: Chunk):
        cat = chunk.catalogue
        self.icd: list[str] = []
        self.icd_by_condition = np.full((len(cat.conditions), 2), -1, dtype=np.int64)  # [cond, female]
        for c in cat.conditions:
            for female in (0, 1):
                code = c.icd10cm_for(bool(female))
                if code:
                    self.icd_by_condition[c.index, female] = self._add(self.icd, code.replace(".", ""))
        self.extra = {
            role: self._add(self.icd, spec["code"].replace(".", ""))
            for role, spec in cat.codes.items()
            if role.endswith("icd10cm")
        }
        self.hcpcs: list[str] = []
        self.visit = {k: self._add(self.hcpcs, v) for k, v in cat.visit_hcpcs.items()}
        self.wellness_ages = np.array([a for a, _ in cat.wellness_hcpcs_by_age])
        self.wellness = np.array([self._add(self.hcpcs, code) for _, code in cat.wellness_hcpcs_by_age])
        self.procedure = np.array([self._add(self.hcpcs, p.hcpcs) if p.hcpcs else -1 for p in cat.procedures])
        self.panel = np.array([self._add(self.hcpcs, p.hcpcs) if p.hcpcs else -1 for p in cat.panels])
        self.vaccine = np.array([self._add(self.hcpcs, v.hcpcs) for v in cat.vaccines])
        self.drug = np.array([self._add(self.hcpcs, d.hcpcs) if d.hcpcs else -1 for d in cat.drugs])
        self.genetic_test = self._add(self.hcpcs, cat.codes["genetic_test_hcpcs"]["code"])
        fees = {"9": 95.0, "8": 40.0, "7": 180.0, "J": 900.0, "G": 60.0, "1": 450.0, "2": 600.0, "3": 1200.0}
        self.fee = np.array([fees.get(code[0], 120.0) for code in self.hcpcs])

    @staticmethod
    def _add(table: list[str], code: str) -> int:
        if code in table:
            return table.index(code)
        table.append(code)
        return len(table) - 1


def _slots(
    owner: np.ndarray, priority: np.ndarray, value: np.ndarray, n_owner: int, width: int
) -> np.ndarray:
    """Long (owner, priority, value) rows into an [n_owner, width] array of values (-1 = empty),
    lowest priority first, each value once per owner."""
    out = np.full((n_owner, width), -1, dtype=np.int64)
    if len(owner) == 0:
        return out
    order = np.lexsort((priority, value, owner))
    owner, value, priority = owner[order], value[order], priority[order]
    first = np.r_[True, (owner[1:] != owner[:-1]) | (value[1:] != value[:-1])]
    owner, value, priority = owner[first], value[first], priority[first]
    order = np.lexsort((value, priority, owner))
    owner, value = owner[order], value[order]
    starts = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1]
    rank = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    keep = rank < width
    out[owner[keep], rank[keep]] = value[keep]
    return out


def render(chunk: Chunk) -> dict[str, Piece]:
    codes = _Codes(chunk)
    records = chunk.records[SOURCE]
    index = records.index(len(chunk.persons))
    tl = chunk.timeline
    claims = np.flatnonzero(tl.e_claim)
    member = index[tl.e_person[claims], tl.e_claim_record[claims]]
    member = np.where(member >= 0, member, index[tl.e_person[claims], 0])
    dx = _diagnoses(chunk, codes, claims)
    lines = _lines(chunk, codes, claims)
    out: dict[str, Piece] = {}
    kinds = tl.e_kind[claims]
    sel = np.isin(kinds, CARRIER_KINDS)
    carrier = _carrier(chunk, codes, claims[sel], member[sel], dx[sel], lines[sel])
    lab_claims = _lab_claims(chunk, codes, records, index)
    out["carrier_claims"] = _join(carrier, lab_claims)
    sel = np.isin(kinds, OUTPATIENT_KINDS)
    out["outpatient_claims"] = _institutional(
        chunk, codes, "outpatient_claims", claims[sel], member[sel], dx[sel], lines[sel]
    )
    sel = kinds == Kind.INPATIENT
    out["inpatient_claims"] = _institutional(
        chunk, codes, "inpatient_claims", claims[sel], member[sel], dx[sel], lines[sel]
    )
    out["prescription_drug_events"] = _pde(chunk, records, index)
    out["members"] = _members(chunk, records)
    out.update(_beneficiaries(chunk, records))
    return out


def _join(a: Piece, b: Piece) -> Piece:
    return Piece(
        a.data + b.data,
        a.rows + b.rows,
        a.malformed + b.malformed,
        a.invalid_date + b.invalid_date,
        a.unmapped + b.unmapped,
    )


def _positive_day(chunk: Chunk) -> np.ndarray:
    """Day a carrier of a pathogenic variant was first tested (positive), NEVER otherwise."""
    lab = chunk.lab
    out = np.full(len(chunk.persons), np.iinfo(np.int64).max, dtype=np.int64)
    carriers = chunk.persons.carrier[lab.person] >= 0
    np.minimum.at(out, lab.person[carriers], lab.day[carriers].astype(np.int64))
    return out


def _diagnoses(chunk: Chunk, codes: _Codes, claims: np.ndarray) -> np.ndarray:
    """[claims, 10] dotless ICD-10-CM code indices: the reason first, then active conditions."""
    tl, cat, persons = chunk.timeline, chunk.catalogue, chunk.persons
    person = tl.e_person[claims]
    day = tl.e_start[claims] // SECONDS_PER_DAY
    female = persons.sex[person].astype(np.int64)
    kind, reason = tl.e_kind[claims], tl.e_reason[claims]
    age = (day - persons.birth[person]) / YEAR
    k = np.arange(len(claims))
    owners, priorities, values = [], [], []

    def add(rows, priority, value):
        ok = value >= 0 if np.ndim(value) else np.full(len(rows), value >= 0)
        owners.append(k[rows][ok])
        priorities.append(np.full(int(ok.sum()), priority))
        values.append(np.broadcast_to(value, (len(rows),))[ok])

    well = np.flatnonzero(kind == Kind.WELLNESS)
    add(
        well,
        0,
        np.where(
            age[well] < 18, codes.extra["wellness_child_icd10cm"], codes.extra["wellness_adult_icd10cm"]
        ),
    )
    chemo = np.flatnonzero(kind == Kind.CHEMO)
    add(chemo, 0, codes.extra["chemotherapy_icd10cm"])
    screen = np.flatnonzero(kind == Kind.SCREENING)
    add(screen, 0, codes.extra["screening_mammogram_icd10cm"])
    other = np.flatnonzero((reason >= 0) & (kind != Kind.SCREENING))
    add(other, 1, codes.icd_by_condition[reason[other], female[other]])
    for c in cat.of_kind("chronic", "cancer", "history"):
        active = np.flatnonzero(chunk.prepared.onset[person, c.index] <= day)
        add(active, 10 + c.index, codes.icd_by_condition[c.index, female[active]])
    positive = np.flatnonzero(_positive_day(chunk)[person] <= day)
    add(positive, 200, codes.extra["genetic_susceptibility_icd10cm"])
    return _slots(np.concatenate(owners), np.concatenate(priorities), np.concatenate(values), len(claims), 10)


def _lines(chunk: Chunk, codes: _Codes, claims: np.ndarray) -> np.ndarray:
    """[claims, 45] HCPCS code indices: the visit, then procedures, lab panels, vaccines, drugs."""
    tl, persons, cat = chunk.timeline, chunk.persons, chunk.catalogue
    position = np.full(len(tl.e_person), -1, dtype=np.int64)
    position[claims] = np.arange(len(claims))
    kind, etype = tl.e_kind[claims], tl.e_type[claims]
    day = tl.e_start[claims] // SECONDS_PER_DAY
    age = (day - persons.birth[tl.e_person[claims]]) / YEAR
    type_keys = [e.key for e in cat.encounter_types]
    visit = np.array([codes.visit.get(key, -1) for key in type_keys])[etype]
    well = kind == Kind.WELLNESS
    band = np.searchsorted(codes.wellness_ages, age, side="right") - 1
    visit = np.where(well, codes.wellness[np.clip(band, 0, None)], visit)
    visit = np.where(np.isin(kind, (Kind.DEATH, Kind.SCREENING, Kind.CHEMO)), -1, visit)
    owners = [np.arange(len(claims))]
    priorities = [np.zeros(len(claims), dtype=np.int64)]
    values = [visit]
    for enc, table, priority in (
        (tl.p_enc, codes.procedure[tl.p_proc], 1),
        (tl.pn_enc, codes.panel[tl.pn_panel], 2),
        (tl.i_enc, codes.vaccine[tl.i_vax], 3),
    ):
        pos = position[enc]
        ok = (pos >= 0) & (table >= 0)
        owners.append(pos[ok])
        priorities.append(np.full(int(ok.sum()), priority))
        values.append(table[ok])
    chemo = np.flatnonzero(kind == Kind.CHEMO)
    for c in cat.of_kind("cancer"):
        rows = chemo[tl.e_reason[claims][chemo] == c.index]
        for drug in c.chemotherapy:
            owners.append(rows)
            priorities.append(np.full(len(rows), 4))
            values.append(np.full(len(rows), codes.drug[drug]))
    owner = np.concatenate(owners)
    value = np.concatenate(values)
    priority = np.concatenate(priorities)
    ok = value >= 0
    return _slots(owner[ok], priority[ok], value[ok], len(claims), 45)


def _claim_ids(chunk: Chunk, key: str, n: int) -> pl.Series:
    return f"{CLAIM_PREFIX[key]}{chunk.index:05d}" + digits(np.arange(n), 9)


def _code_columns(prefix: str, table: list[str], slots: np.ndarray, width: int) -> dict[str, pl.Series]:
    return {f"{prefix}_{i + 1}": take(table, slots[:, i]) for i in range(width)}


def _amounts(values: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(values).astype(np.int64)).cast(pl.String)


def _carrier(chunk: Chunk, codes: _Codes, claims, member, dx, lines) -> Piece:
    tl, rng = chunk.timeline, chunk.rng
    n = len(claims)
    records = chunk.records[SOURCE]
    line_slots = lines[:, :13]
    has_line = line_slots >= 0
    fee = np.where(
        has_line, codes.fee[np.clip(line_slots, 0, None)] * rng.uniform(0.6, 1.4, line_slots.shape), 0.0
    )
    payment = np.round(fee / 10.0) * 10.0
    coinsurance = np.round(payment * 0.2 / 10.0) * 10.0
    m_ = masks(rng, n, chunk.config)
    base = pl.DataFrame(
        {
            "npi": digits(rng.integers(10**9, 10**10 - 1, n), 10),
            "tax": digits(rng.integers(10**8, 10**9 - 1, n), 9),
            "dx1": take(codes.icd, dx[:, 0]),
            **{f"present{i}": has_line[:, i] for i in range(13)},
        }
    )
    empty = pl.lit("")
    expressions = []
    for i in range(13):
        present = pl.col(f"present{i}")
        expressions += [
            pl.when(present).then(pl.col("npi")).otherwise(empty).alias(f"PRF_PHYSN_NPI_{i + 1}"),
            pl.when(present).then(pl.col("tax")).otherwise(empty).alias(f"TAX_NUM_{i + 1}"),
            pl.when(present).then(pl.lit("A")).otherwise(empty).alias(f"LINE_PRCSG_IND_CD_{i + 1}"),
            pl.when(present).then(pl.col("dx1")).otherwise(empty).alias(f"LINE_ICD9_DGNS_CD_{i + 1}"),
        ]
    lines_frame = base.select(expressions)
    values: dict[str, pl.Series] = {
        "DESYNPUF_ID": records.ids.gather(member),
        "CLM_ID": _claim_ids(chunk, "carrier_claims", n),
        "CLM_FROM_DT": corrupt_dates(
            compact_dates(tl.e_start[claims] // SECONDS_PER_DAY), m_.invalid, compact=True
        ),
        "CLM_THRU_DT": compact_dates(tl.e_stop[claims] // SECONDS_PER_DAY),
        **_code_columns("ICD9_DGNS_CD", codes.icd, dx, 8),
        **_code_columns("HCPCS_CD", codes.hcpcs, line_slots, 13),
        **lines_frame.to_dict(),
    }
    values["ICD9_DGNS_CD_1"] = localize(values["ICD9_DGNS_CD_1"], m_.unmapped, LOCAL_DX_PREFIX)
    zero = pl.repeat("0", n, eager=True)
    for i in range(13):
        values[f"LINE_NCH_PMT_AMT_{i + 1}"] = _amounts(payment[:, i])
        values[f"LINE_BENE_PTB_DDCTBL_AMT_{i + 1}"] = zero
        values[f"LINE_BENE_PRMRY_PYR_PD_AMT_{i + 1}"] = zero
        values[f"LINE_COINSRNC_AMT_{i + 1}"] = _amounts(coinsurance[:, i])
        values[f"LINE_ALOWD_CHRG_AMT_{i + 1}"] = _amounts(payment[:, i] + coinsurance[:, i])
    return render_csv(_frame(CARRIER, values, n), m_)


def _lab_claims(chunk: Chunk, codes: _Codes, records, index) -> Piece:
    """The genetic test, billed by the lab as a carrier claim when the person is enrolled."""
    lab, rng = chunk.lab, chunk.rng
    ok, span = enrolled(chunk.membership, lab.person, lab.day)
    rows = np.flatnonzero(ok & (lab.day >= DAY_CLAIMS))
    n = len(rows)
    person = lab.person[rows]
    dup = (span[rows] >= chunk.membership.payer_dup_span[person]).astype(np.int64)
    member = index[person, dup]
    member = np.where(member >= 0, member, index[person, 0])
    breast = chunk.catalogue.condition("breast_cancer").index
    female = chunk.persons.sex[person].astype(np.int64)
    has_cancer = chunk.prepared.onset[person, breast] <= lab.day[rows]
    dx = np.where(
        has_cancer, codes.icd_by_condition[breast, female], codes.extra["genetic_screening_icd10cm"]
    )
    payment = np.round(rng.uniform(250, 400, n) / 10.0) * 10.0
    npi = digits(rng.integers(10**9, 10**10 - 1, n), 10)
    m_ = masks(rng, n, chunk.config)
    values = {
        "DESYNPUF_ID": records.ids.gather(member),
        "CLM_ID": f"5{chunk.index:05d}" + digits(np.arange(n), 9),
        "CLM_FROM_DT": corrupt_dates(compact_dates(lab.day[rows]), m_.invalid, compact=True),
        "CLM_THRU_DT": compact_dates(lab.day[rows]),
        "ICD9_DGNS_CD_1": localize(take(codes.icd, dx), m_.unmapped, LOCAL_DX_PREFIX),
        "PRF_PHYSN_NPI_1": npi,
        "TAX_NUM_1": digits(rng.integers(10**8, 10**9 - 1, n), 9),
        "HCPCS_CD_1": pl.repeat(codes.hcpcs[codes.genetic_test], n, eager=True),
        "LINE_NCH_PMT_AMT_1": _amounts(payment),
        "LINE_ALOWD_CHRG_AMT_1": _amounts(payment),
        "LINE_PRCSG_IND_CD_1": pl.repeat("A", n, eager=True),
        "LINE_ICD9_DGNS_CD_1": take(codes.icd, dx),
    }
    zero_columns = [
        c
        for c in CARRIER
        if c.startswith(("LINE_NCH", "LINE_BENE", "LINE_COINS", "LINE_ALOWD")) and c not in values
    ]
    for name in zero_columns:
        values[name] = pl.repeat("0", n, eager=True)
    return render_csv(_frame(CARRIER, values, n), m_)


def _institutional(chunk: Chunk, codes: _Codes, key: str, claims, member, dx, lines) -> Piece:
    tl, rng, cat = chunk.timeline, chunk.rng, chunk.catalogue
    n = len(claims)
    records = chunk.records[SOURCE]
    start_day = tl.e_start[claims] // SECONDS_PER_DAY
    stop_day = tl.e_stop[claims] // SECONDS_PER_DAY
    site = tl.e_site[claims]
    outside = "22" + digits(rng.integers(0, 10_000, n), 4)
    provider = pl.select(
        pl.when(pl.lit(pl.Series(site >= 0)))
        .then(take(SITE_PROVIDER_NUMBERS, np.clip(site, 0, 1)))
        .otherwise(outside)
    ).to_series()
    fee = np.where(lines >= 0, codes.fee[np.clip(lines, 0, None)], 0.0).sum(axis=1)
    inpatient = key == "inpatient_claims"
    if inpatient:
        fee = fee + 4_000.0 * np.maximum(stop_day - start_day, 1)
    payment = np.round(fee * rng.uniform(0.7, 1.2, n) / 10.0) * 10.0
    m_ = masks(rng, n, chunk.config)
    npi = digits(rng.integers(10**9, 10**10 - 1, n), 10)
    values: dict[str, pl.Series | str] = {
        "DESYNPUF_ID": records.ids.gather(member),
        "CLM_ID": _claim_ids(chunk, key, n),
        "SEGMENT": "1",
        "CLM_FROM_DT": corrupt_dates(compact_dates(start_day), m_.invalid, compact=True),
        "CLM_THRU_DT": compact_dates(stop_day),
        "PRVDR_NUM": provider,
        "CLM_PMT_AMT": _amounts(payment),
        "NCH_PRMRY_PYR_CLM_PD_AMT": "0",
        "AT_PHYSN_NPI": npi,
        "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": "0",
        **_code_columns("ICD9_DGNS_CD", codes.icd, dx, 10),
        **_code_columns("HCPCS_CD", codes.hcpcs, lines, 45),
        "ADMTNG_ICD9_DGNS_CD": take(codes.icd, dx[:, 0]),
    }
    values["ICD9_DGNS_CD_1"] = localize(values["ICD9_DGNS_CD_1"], m_.unmapped, LOCAL_DX_PREFIX)
    if inpatient:
        reason = tl.e_reason[claims]
        with_procedure = (lines[:, 1:] >= 0).any(axis=1)
        drg_plain = np.array([c.drg or "" for c in cat.conditions] + [""])[np.where(reason >= 0, reason, -1)]
        drg_proc = np.array([(c.drg_with_procedure or c.drg or "") for c in cat.conditions] + [""])[
            np.where(reason >= 0, reason, -1)
        ]
        values.update(
            {
                "CLM_ADMSN_DT": compact_dates(start_day),
                "NCH_BENE_DSCHRG_DT": compact_dates(stop_day),
                "CLM_UTLZTN_DAY_CNT": integers(np.maximum(stop_day - start_day, 1)),
                "CLM_DRG_CD": pl.Series(np.where(with_procedure, drg_proc, drg_plain)),
                "CLM_PASS_THRU_PER_DIEM_AMT": "0",
                "NCH_BENE_IP_DDCTBL_AMT": "1600",
                "NCH_BENE_PTA_COINSRNC_LBLTY_AM": "0",
                "OP_PHYSN_NPI": pl.select(
                    pl.when(pl.lit(pl.Series(with_procedure))).then(npi).otherwise(pl.lit(""))
                ).to_series(),
            }
        )
        columns = INPATIENT
    else:
        values.update(
            {"NCH_BENE_PTB_DDCTBL_AMT": "0", "NCH_BENE_PTB_COINSRNC_AMT": _amounts(np.round(payment * 0.02))}
        )
        columns = OUTPATIENT
    return render_csv(_frame(columns, values, n), m_)


def _pde(chunk: Chunk, records, index) -> Piece:
    tl, cat, rng = chunk.timeline, chunk.catalogue, chunk.rng
    n = len(tl.f_person)
    member = index[tl.f_person, tl.f_record]
    member = np.where(member >= 0, member, index[tl.f_person, 0])
    drug = tl.f_drug
    quantity = np.array([d.quantity for d in cat.drugs])[drug]
    supply = np.array([d.days for d in cat.drugs])[drug]
    cost = np.array([d.cost for d in cat.drugs])[drug] * rng.uniform(0.9, 1.1, n)
    patient_pay = np.round(np.minimum(cost, rng.choice([0.0, 5.0, 10.0, 20.0, 45.0], n)))
    m_ = masks(rng, n, chunk.config)
    values = {
        "DESYNPUF_ID": records.ids.gather(member),
        "PDE_ID": _claim_ids(chunk, "prescription_drug_events", n),
        "SRVC_DT": corrupt_dates(compact_dates(tl.f_day), m_.invalid, compact=True),
        "PROD_SRVC_ID": localize(take([d.ndc for d in cat.drugs], drug), m_.unmapped, LOCAL_NDC_PREFIX),
        "QTY_DSPNSD_NUM": integers(quantity),
        "DAYS_SUPLY_NUM": integers(supply),
        "PTNT_PAY_AMT": integers(patient_pay),
        "TOT_RX_CST_AMT": integers(np.round(cost)),
    }
    return render_csv(_frame(PDE, values, n), m_)


def _members(chunk: Chunk, records) -> Piece:
    places = chunk.names.places
    p = chunk.persons
    values = {
        "DESYNPUF_ID": records.ids,
        "FIRST_NAME": pl.Series(records.first),
        "MIDDLE_NAME": pl.Series(records.middle),
        "LAST_NAME": pl.Series(records.last),
        "BIRTH_DATE": compact_dates(records.birth),
        "SEX": pl.Series(np.where(p.sex[records.person] == 1, "F", "M")),
        "SSN": pl.Series(records.ssn),
        "ADDRESS": pl.Series(records.street),
        "CITY": take([x.city for x in places], records.place),
        "STATE": take([x.state for x in places], records.place),
        "ZIP": take([x.zip for x in places], records.place),
        "PHONE": pl.Series(records.phone),
    }
    return render_csv(_frame(MEMBERS, values, len(records)), no_masks(len(records)))


def _beneficiaries(chunk: Chunk, records) -> dict[str, Piece]:
    """One row per member id and calendar year with at least one enrolled month."""
    ms, persons, cat = chunk.membership, chunk.persons, chunk.catalogue
    places = chunk.names.places
    person, dup = records.person, records.dup
    r = len(person)
    months = len(YEARS) * 12
    death_month = np.where(persons.death[person] <= DAY_END, month_of(persons.death[person]), months - 1)
    contract = np.full((r, months), -1, dtype=np.int64)
    for k in range(MAX_SPANS):
        start = ms.span_start[person, k].astype(np.int64)
        end = np.minimum(ms.span_end[person, k].astype(np.int64), death_month)
        belongs = np.where(dup == 1, k >= ms.payer_dup_span[person], k < ms.payer_dup_span[person])
        used = (start >= 0) & belongs & (end >= start)
        grid = np.arange(months)[None, :]
        inside = used[:, None] & (grid >= start[:, None]) & (grid <= end[:, None])
        contract = np.where(inside, ms.span_contract[person, k][:, None].astype(np.int64), contract)
    hmo = np.array([c.startswith("H") for c in CONTRACTS])
    out: dict[str, Piece] = {}
    race_codes = [x[3] for x in chunk.names.races] + ["5"]
    race = np.where(persons.hispanic[person], len(race_codes) - 1, persons.race[person])
    contract_names = {i: c for i, c in enumerate(CONTRACTS)} | {-1: "0"}
    hmo_codes = [i for i, c in enumerate(CONTRACTS) if c.startswith("H")]
    for y, year in enumerate(YEARS):
        block = contract[:, 12 * y : 12 * y + 12]
        enrolled_months = (block >= 0).sum(axis=1)
        rows = np.flatnonzero(enrolled_months > 0)
        block = block[rows]
        n = len(rows)
        pr = person[rows]
        year_end = int(np.datetime64(f"{year}-12-31", "D").astype(np.int64))
        values: dict[str, pl.Series | str] = {
            "DESYNPUF_ID": records.ids.gather(rows),
            "BENE_BIRTH_DT": compact_dates(records.birth[rows]),
            "BENE_DEATH_DT": compact_dates(
                np.where(persons.death[pr] <= year_end, persons.death[pr], np.iinfo(np.int32).max)
            ),
            "BENE_SEX_IDENT_CD": integers(np.where(persons.sex[pr] == 1, 2, 1)),
            "BENE_RACE_CD": take(race_codes, race[rows]),
            "BENE_ESRD_IND": "0",
            "SP_STATE_CODE": take([x.ssa_state for x in places], records.place[rows]),
            "BENE_COUNTY_CD": take([x.ssa_county for x in places], records.place[rows]),
            "BENE_HI_CVRAGE_TOT_MONS": integers(enrolled_months[rows]),
            "BENE_SMI_CVRAGE_TOT_MONS": integers(enrolled_months[rows]),
            "BENE_HMO_CVRAGE_TOT_MONS": integers(((block >= 0) & hmo[np.clip(block, 0, None)]).sum(axis=1)),
            "PLAN_CVRG_MOS_NUM": integers(enrolled_months[rows]),
        }
        for flag in SP_FLAGS:
            has = np.zeros(n, dtype=bool)
            for key in SP_CONDITIONS.get(flag, ()):
                has |= chunk.prepared.onset[pr, cat.condition(key).index] <= year_end
            values[flag] = integers(np.where(has, 1, 2))
        for name in BENEFICIARY[23:]:
            values[name] = integers(np.round(chunk.rng.gamma(0.8, 900.0, n) / 10.0) * 10)
        months = pl.DataFrame({f"m{k}": block[:, k] for k in range(12)})
        expressions = []
        for k in range(12):
            month = pl.col(f"m{k}")
            expressions += [
                pl.when(month >= 0)
                .then(pl.lit("3"))
                .otherwise(pl.lit("0"))
                .alias(f"MDCR_ENTLMT_BUYIN_IND_{k + 1:02d}"),
                pl.when(month.is_in(hmo_codes))
                .then(pl.lit("1"))
                .otherwise(pl.lit("0"))
                .alias(f"HMO_IND_{k + 1:02d}"),
                month.replace_strict(contract_names, return_dtype=pl.String).alias(
                    f"PTD_CNTRCT_ID_{k + 1:02d}"
                ),
            ]
        values.update(months.select(expressions).to_dict())
        out[f"beneficiary_summary_{year}"] = render_csv(_frame(BENEFICIARY + MONTHLY, values, n), no_masks(n))
    return out
