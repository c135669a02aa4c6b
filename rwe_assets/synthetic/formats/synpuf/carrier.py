"""Carrier claims: office, wellness, follow-up and urgent-care visits with up to 13 lines, and the
lab's genetic test, billed by the lab when the person is enrolled."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    columns_frame,
    corrupt_dates,
    localize,
    masks,
    render_csv,
)
from rwe_assets.synthetic.formats.synpuf.claim_codes import ClaimCodes, amounts, claim_ids, code_columns
from rwe_assets.synthetic.formats.synpuf.layout import CARRIER, LOCAL_DX_PREFIX, SOURCE
from rwe_assets.synthetic.membership import enrolled
from rwe_assets.synthetic.util import (
    DAY_CLAIMS,
    SECONDS_PER_DAY,
    compact_dates,
    digits,
    take,
)


def carrier_claims(chunk: Chunk, codes: ClaimCodes, claims, member, dx, lines) -> Piece:
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
        "CLM_ID": claim_ids(chunk, "carrier_claims", n),
        "CLM_FROM_DT": corrupt_dates(
            compact_dates(tl.e_start[claims] // SECONDS_PER_DAY), m_.invalid, compact=True
        ),
        "CLM_THRU_DT": compact_dates(tl.e_stop[claims] // SECONDS_PER_DAY),
        **code_columns("ICD9_DGNS_CD", codes.icd, dx, 8),
        **code_columns("HCPCS_CD", codes.hcpcs, line_slots, 13),
        **lines_frame.to_dict(),
    }
    values["ICD9_DGNS_CD_1"] = localize(values["ICD9_DGNS_CD_1"], m_.unmapped, LOCAL_DX_PREFIX)
    zero = pl.repeat("0", n, eager=True)
    for i in range(13):
        values[f"LINE_NCH_PMT_AMT_{i + 1}"] = amounts(payment[:, i])
        values[f"LINE_BENE_PTB_DDCTBL_AMT_{i + 1}"] = zero
        values[f"LINE_BENE_PRMRY_PYR_PD_AMT_{i + 1}"] = zero
        values[f"LINE_COINSRNC_AMT_{i + 1}"] = amounts(coinsurance[:, i])
        values[f"LINE_ALOWD_CHRG_AMT_{i + 1}"] = amounts(payment[:, i] + coinsurance[:, i])
    return render_csv(columns_frame(CARRIER, values, n), m_)


def genetic_test_claims(chunk: Chunk, codes: ClaimCodes, records, index) -> Piece:
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
        "LINE_NCH_PMT_AMT_1": amounts(payment),
        "LINE_ALOWD_CHRG_AMT_1": amounts(payment),
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
    return render_csv(columns_frame(CARRIER, values, n), m_)
