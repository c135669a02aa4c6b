"""Institutional claims: outpatient (emergency visits, cancer work-up, screening, chemotherapy) and
inpatient stays (admission, discharge, MS-DRG with or without a procedure)."""

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
from rwe_assets.synthetic.formats.synpuf.layout import (
    INPATIENT,
    LOCAL_DX_PREFIX,
    OUTPATIENT,
    SITE_PROVIDER_NUMBERS,
    SOURCE,
)
from rwe_assets.synthetic.util import (
    SECONDS_PER_DAY,
    compact_dates,
    digits,
    integers,
    take,
)


def institutional_claims(chunk: Chunk, codes: ClaimCodes, key: str, claims, member, dx, lines) -> Piece:
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
        "CLM_ID": claim_ids(chunk, key, n),
        "SEGMENT": "1",
        "CLM_FROM_DT": corrupt_dates(compact_dates(start_day), m_.invalid, compact=True),
        "CLM_THRU_DT": compact_dates(stop_day),
        "PRVDR_NUM": provider,
        "CLM_PMT_AMT": amounts(payment),
        "NCH_PRMRY_PYR_CLM_PD_AMT": "0",
        "AT_PHYSN_NPI": npi,
        "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": "0",
        **code_columns("ICD9_DGNS_CD", codes.icd, dx, 10),
        **code_columns("HCPCS_CD", codes.hcpcs, lines, 45),
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
            {"NCH_BENE_PTB_DDCTBL_AMT": "0", "NCH_BENE_PTB_COINSRNC_AMT": amounts(np.round(payment * 0.02))}
        )
        columns = OUTPATIENT
    return render_csv(columns_frame(columns, values, n), m_)
