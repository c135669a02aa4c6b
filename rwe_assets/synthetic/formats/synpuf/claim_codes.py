"""The codes of a claim: dotless ICD-10-CM diagnoses (the reason first, then active conditions, then
genetic susceptibility once tested positive) and HCPCS lines (the visit, procedures, lab panels,
vaccines, chemotherapy drugs), as fixed-width slot arrays; and the column helpers claims share."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.clinical.timeline import Kind
from rwe_assets.synthetic.formats.common import Chunk
from rwe_assets.synthetic.formats.synpuf.layout import CLAIM_PREFIX
from rwe_assets.synthetic.util import SECONDS_PER_DAY, YEAR, digits, take


class ClaimCodes:
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


def slots(owner: np.ndarray, priority: np.ndarray, value: np.ndarray, n_owner: int, width: int) -> np.ndarray:
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


def positive_day(chunk: Chunk) -> np.ndarray:
    """Day a carrier of a pathogenic variant was first tested (positive), NEVER otherwise."""
    lab = chunk.lab
    out = np.full(len(chunk.persons), np.iinfo(np.int64).max, dtype=np.int64)
    carriers = chunk.persons.carrier[lab.person] >= 0
    np.minimum.at(out, lab.person[carriers], lab.day[carriers].astype(np.int64))
    return out


def diagnoses(chunk: Chunk, codes: ClaimCodes, claims: np.ndarray) -> np.ndarray:
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
    positive = np.flatnonzero(positive_day(chunk)[person] <= day)
    add(positive, 200, codes.extra["genetic_susceptibility_icd10cm"])
    return slots(np.concatenate(owners), np.concatenate(priorities), np.concatenate(values), len(claims), 10)


def claim_lines(chunk: Chunk, codes: ClaimCodes, claims: np.ndarray) -> np.ndarray:
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
    return slots(owner[ok], priority[ok], value[ok], len(claims), 45)


def claim_ids(chunk: Chunk, key: str, n: int) -> pl.Series:
    return f"{CLAIM_PREFIX[key]}{chunk.index:05d}" + digits(np.arange(n), 9)


def code_columns(prefix: str, table: list[str], slots: np.ndarray, width: int) -> dict[str, pl.Series]:
    return {f"{prefix}_{i + 1}": take(table, slots[:, i]) for i in range(width)}


def amounts(values: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(values).astype(np.int64)).cast(pl.String)
