"""payer (DE-SynPUF, incremental): a refill (new PDE_ID, dated when the last fill runs out); a carrier
claim re-sent under its CLM_ID with another line payment (adjustment) or with CLM_ADJSMT_TYPE_CD 1
(void), in a file of its own, the only payer file with that column."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.synpuf.layout import FILES, SPAN_YEARS
from rwe_assets.synthetic.update.base import (
    Base,
    change_rows,
    changed_ids,
    choose,
    csv_rows,
    latest,
    to_lines,
)

ADJUSTMENTS_FILE = f"DE1_0_{SPAN_YEARS}_Carrier_Claims_Adjustments.csv"
ADJUSTMENT_COLUMNS = [*FILES["carrier_claims"][1], "CLM_ADJSMT_TYPE_CD"]
REFILL_ID_PREFIX = (
    "49"  # PDE ids of refills: '49' + update number (4) + counter (9); chunks use '4' + chunk (5)
)


SOURCE = "payer"
PDE_KEY, CARRIER_KEY = "prescription_drug_events", "carrier_claims"


def _refills(pde: pl.DataFrame, persons: pl.DataFrame, number: int) -> pl.DataFrame:
    """A refill of each person's latest fill, dated when its days of supply run out, new PDE_ID."""
    served = pl.col("SRVC_DT").str.strptime(pl.Date, "%Y%m%d", strict=False)
    supply = pl.col("DAYS_SUPLY_NUM").cast(pl.Int64, strict=False)
    fills = pde.join(persons, on="DESYNPUF_ID").filter(served.is_not_null() & supply.is_not_null())
    counter = pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.String).str.zfill(9)
    return latest(fills, "DESYNPUF_ID", "SRVC_DT").with_columns(
        (pl.lit(f"{REFILL_ID_PREFIX}{number:04d}") + counter).alias("PDE_ID"),
        (served + pl.duration(days=supply)).dt.strftime("%Y%m%d").alias("SRVC_DT"),
    )


def _adjustments(carrier: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Each person's latest carrier claim re-sent with its first line paid 10 dollars more."""
    adjusted = latest(carrier.join(persons, on="DESYNPUF_ID"), "DESYNPUF_ID", "CLM_FROM_DT")
    paid = pl.col("LINE_NCH_PMT_AMT_1").cast(pl.Int64, strict=False)
    return adjusted.filter(paid.is_not_null()).with_columns(
        (paid + 10).cast(pl.String).alias("LINE_NCH_PMT_AMT_1"), pl.lit("").alias("CLM_ADJSMT_TYPE_CD")
    )


def _voids(carrier: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Each person's latest carrier claim re-sent with CLM_ADJSMT_TYPE_CD 1 (a void)."""
    voided = latest(carrier.join(persons, on="DESYNPUF_ID"), "DESYNPUF_ID", "CLM_FROM_DT")
    return voided.with_columns(pl.lit("1").alias("CLM_ADJSMT_TYPE_CD"))


def payer_changes(base: Base, batch: str, fraction: float, rng: np.random.Generator, number: int):
    """(landing lines by (source, file key), change rows, unchanged rows re-sent: none)."""
    ids = {
        k: f.rename({"SOURCE_PERSON_ID": "DESYNPUF_ID"})
        for k, f in choose(base, rng, fraction, SOURCE).items()
    }
    (pde_file, pde_columns), (carrier_file, carrier_columns) = FILES[PDE_KEY], FILES[CARRIER_KEY]
    pde = csv_rows(base.files(SOURCE, pde_file), pde_columns)
    carrier = csv_rows(base.files(SOURCE, carrier_file), carrier_columns)
    refill = _refills(pde, ids["new_events"], number)
    adjusted = _adjustments(carrier, ids["corrections"])
    voided = _voids(carrier, ids["retractions"])
    changes = [
        change_rows(SOURCE, batch, PDE_KEY, "new_event", changed_ids(refill, "PDE_ID", "DESYNPUF_ID"), ""),
        change_rows(
            SOURCE,
            batch,
            CARRIER_KEY,
            "adjustment",
            changed_ids(adjusted, "CLM_ID", "DESYNPUF_ID"),
            "LINE_NCH_PMT_AMT_1",
        ),
        change_rows(
            SOURCE,
            batch,
            CARRIER_KEY,
            "void",
            changed_ids(voided, "CLM_ID", "DESYNPUF_ID"),
            "CLM_ADJSMT_TYPE_CD",
        ),
    ]
    both = pl.concat([adjusted, voided]).select(ADJUSTMENT_COLUMNS)
    out = {
        (SOURCE, PDE_KEY): (to_lines(refill, pde_columns), len(refill)),
        (SOURCE, "carrier_claims_adjustments"): (to_lines(both, ADJUSTMENT_COLUMNS), len(both)),
    }
    return out, changes, 0
