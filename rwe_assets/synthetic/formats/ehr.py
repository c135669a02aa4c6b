"""What both EHR writers (Synthea CSV, FHIR NDJSON) derive the same way: which encounters a site
holds, whose record each belongs to, where it happened, who saw the patient and who paid; an
observation's value as text and a device's UDI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rwe_assets.synthetic.clinical.timeline import Kind, text_table
from rwe_assets.synthetic.formats.common import Chunk
from rwe_assets.synthetic.identity import Records
from rwe_assets.synthetic.reference import MEDICAID, MEDICARE, NO_INSURANCE, OTHER_PAYER, OUR_PAYER, Site
from rwe_assets.synthetic.util import SECONDS_PER_DAY, YEAR, digits, fixed, integers, take

HOSPITAL_KINDS = (Kind.EMERGENCY, Kind.INPATIENT, Kind.CANCER_DX, Kind.SCREENING, Kind.CHEMO)
BASE_COST = {
    "wellness": 136.80,
    "ambulatory": 85.55,
    "outpatient": 92.40,
    "urgentcare": 117.30,
    "emergency": 146.18,
    "inpatient": 106.58,
}


@dataclass
class SiteView:
    site: Site
    records: Records
    enc: np.ndarray  # encounter indices held by the site, in timeline order
    position: np.ndarray  # encounter index -> position in `enc`, -1 if another site's
    patient: np.ndarray  # per encounter of the site: row in `records`
    org: np.ndarray  # per encounter: organization index
    provider: np.ndarray  # per encounter: provider index
    payer: np.ndarray  # per encounter: payer index (reference.PAYERS)

    def rows(self, enc_column: np.ndarray) -> np.ndarray:
        """Rows of an event table whose encounter is held by this site."""
        return np.flatnonzero(self.position[enc_column] >= 0)


def site_view(chunk: Chunk, site_index: int, source: str) -> SiteView:
    tl = chunk.timeline
    site = chunk.reference.sites[site_index]
    records = chunk.records[source]
    rng = chunk.rng
    n = len(chunk.persons)
    enc = np.flatnonzero(tl.e_site == site_index)
    position = np.full(len(tl.e_person), -1, dtype=np.int64)
    position[enc] = np.arange(len(enc))
    person = tl.e_person[enc]
    index = records.index(n)
    patient = index[person, tl.e_record[enc]]
    patient = np.where(patient >= 0, patient, index[person, 0])

    clinic = rng.integers(1, len(site.org_ids), n)
    counts = np.bincount(site.provider_org, minlength=len(site.org_ids))
    first = np.cumsum(counts) - counts
    family_doctor = first[clinic] + (rng.random(n) * counts[clinic]).astype(np.int64)
    hospital = np.isin(tl.e_kind[enc], HOSPITAL_KINDS)
    org = np.where(hospital, 0, clinic[person])
    hospitalist = first[0] + rng.integers(0, counts[0], len(enc))
    provider = np.where(hospital, hospitalist, family_doctor[person])

    age = (tl.e_start[enc] / SECONDS_PER_DAY - chunk.persons.birth[person]) / YEAR
    other = np.array([MEDICAID, OTHER_PAYER, OTHER_PAYER, NO_INSURANCE])[rng.integers(0, 4, n)]
    payer = np.where(tl.e_claim[enc], OUR_PAYER, np.where(age >= 65, MEDICARE, other[person]))
    return SiteView(site, records, enc, position, patient, org, provider, payer)


def encounter_costs(chunk: Chunk, view: SiteView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cat = chunk.catalogue
    classes = [e.encounter_class for e in cat.encounter_types]
    base_by_type = np.array([BASE_COST.get(c, 100.0) for c in classes])
    base = base_by_type[chunk.timeline.e_type[view.enc]]
    total = base + np.round(chunk.rng.gamma(2.0, 180.0, len(view.enc)), 2)
    covered = np.where(
        view.payer == NO_INSURANCE, 0.0, np.round(total * chunk.rng.uniform(0.5, 0.9, len(view.enc)), 2)
    )
    return base, total, covered


def observation_values(chunk: Chunk, rows: np.ndarray) -> pl.Series:
    """Observation results as text: numbers with the lab's decimals, or the text value."""
    tl, cat = chunk.timeline, chunk.catalogue
    lab = tl.o_lab[rows]
    value = tl.o_value[rows]
    out = pl.Series(np.full(len(rows), "", dtype=object), dtype=pl.String)
    decimals = np.array([lab_.decimals for lab_ in cat.labs])[lab]
    for d in np.unique(decimals):
        sel = np.flatnonzero(decimals == d)
        out = out.scatter(sel, fixed(value[sel], int(d)))
    texts = tl.o_text[rows]
    text_rows = np.flatnonzero(texts >= 0)
    if len(text_rows):
        out = out.scatter(text_rows, take(text_table(cat), texts[text_rows]))
    return out


def device_udis(rng, n: int) -> pl.Series:
    """GS1 UDI carrier strings: (01) GTIN, (10) lot, (21) serial."""
    gtin = digits(rng.integers(0, 10**14, n), 14)
    lot = integers(rng.integers(10**6, 10**9, n))
    serial = integers(rng.integers(10**8, 10**9, n))
    return "(01)" + gtin + "(10)" + lot + "(21)" + serial
