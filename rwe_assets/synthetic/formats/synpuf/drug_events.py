"""Prescription drug events: the timeline's pharmacy fills, with synthetic NDCs."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    columns_frame,
    corrupt_dates,
    localize,
    masks,
    render_csv,
)
from rwe_assets.synthetic.formats.synpuf.claim_codes import claim_ids
from rwe_assets.synthetic.formats.synpuf.layout import LOCAL_NDC_PREFIX, PDE
from rwe_assets.synthetic.util import (
    compact_dates,
    integers,
    take,
)


def drug_events(chunk: Chunk, records, index) -> Piece:
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
        "PDE_ID": claim_ids(chunk, "prescription_drug_events", n),
        "SRVC_DT": corrupt_dates(compact_dates(tl.f_day), m_.invalid, compact=True),
        "PROD_SRVC_ID": localize(take([d.ndc for d in cat.drugs], drug), m_.unmapped, LOCAL_NDC_PREFIX),
        "QTY_DSPNSD_NUM": integers(quantity),
        "DAYS_SUPLY_NUM": integers(supply),
        "PTNT_PAY_AMT": integers(patient_pay),
        "TOT_RX_CST_AMT": integers(np.round(cost)),
    }
    return render_csv(columns_frame(PDE, values, n), m_)
