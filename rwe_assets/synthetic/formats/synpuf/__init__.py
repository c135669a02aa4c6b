"""The payer: a claims extract in the CMS DE-SynPUF layout, plus the member file with the PII the
payer holds.

Modules: layout.py (files and columns), claim_codes.py (diagnosis and line slots), carrier.py,
institutional.py (inpatient, outpatient), drug_events.py, beneficiaries.py (summaries, members).

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

from rwe_assets.synthetic.clinical.timeline import Kind
from rwe_assets.synthetic.formats.common import Chunk, Piece
from rwe_assets.synthetic.formats.synpuf.beneficiaries import beneficiary_summaries, members
from rwe_assets.synthetic.formats.synpuf.carrier import carrier_claims, genetic_test_claims
from rwe_assets.synthetic.formats.synpuf.claim_codes import ClaimCodes, claim_lines, diagnoses
from rwe_assets.synthetic.formats.synpuf.drug_events import drug_events
from rwe_assets.synthetic.formats.synpuf.institutional import institutional_claims
from rwe_assets.synthetic.formats.synpuf.layout import CARRIER_KINDS, OUTPATIENT_KINDS, SOURCE


def render(chunk: Chunk) -> dict[str, Piece]:
    codes = ClaimCodes(chunk)
    records = chunk.records[SOURCE]
    index = records.index(len(chunk.persons))
    tl = chunk.timeline
    claims = np.flatnonzero(tl.e_claim)
    member = index[tl.e_person[claims], tl.e_claim_record[claims]]
    member = np.where(member >= 0, member, index[tl.e_person[claims], 0])
    dx = diagnoses(chunk, codes, claims)
    lines = claim_lines(chunk, codes, claims)
    out: dict[str, Piece] = {}
    kinds = tl.e_kind[claims]
    sel = np.isin(kinds, CARRIER_KINDS)
    carrier = carrier_claims(chunk, codes, claims[sel], member[sel], dx[sel], lines[sel])
    lab_claims = genetic_test_claims(chunk, codes, records, index)
    out["carrier_claims"] = _join(carrier, lab_claims)
    sel = np.isin(kinds, OUTPATIENT_KINDS)
    out["outpatient_claims"] = institutional_claims(
        chunk, codes, "outpatient_claims", claims[sel], member[sel], dx[sel], lines[sel]
    )
    sel = kinds == Kind.INPATIENT
    out["inpatient_claims"] = institutional_claims(
        chunk, codes, "inpatient_claims", claims[sel], member[sel], dx[sel], lines[sel]
    )
    out["prescription_drug_events"] = drug_events(chunk, records, index)
    out["members"] = members(chunk, records)
    out.update(beneficiary_summaries(chunk, records))
    return out


def _join(a: Piece, b: Piece) -> Piece:
    return Piece(
        a.data + b.data,
        a.rows + b.rows,
        a.malformed + b.malformed,
        a.invalid_date + b.invalid_date,
        a.unmapped + b.unmapped,
    )
