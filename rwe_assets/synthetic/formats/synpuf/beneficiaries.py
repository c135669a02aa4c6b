"""Person-level payer files: members.csv (the PII the payer holds) and one beneficiary summary per
calendar year (a row per member id with an enrolled month: chronic-condition flags, and monthly
enrollment, HMO and plan contract columns, exact to the month)."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    columns_frame,
    no_masks,
    render_csv,
)
from rwe_assets.synthetic.formats.synpuf.layout import (
    BENEFICIARY,
    MEMBERS,
    MONTHLY,
    SP_CONDITIONS,
    SP_FLAGS,
    YEARS,
)
from rwe_assets.synthetic.membership import CONTRACTS, MAX_SPANS, month_of
from rwe_assets.synthetic.util import (
    DAY_END,
    compact_dates,
    integers,
    take,
)


def members(chunk: Chunk, records) -> Piece:
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
    return render_csv(columns_frame(MEMBERS, values, len(records)), no_masks(len(records)))


def beneficiary_summaries(chunk: Chunk, records) -> dict[str, Piece]:
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
        out[f"beneficiary_summary_{year}"] = render_csv(
            columns_frame(BENEFICIARY + MONTHLY, values, n), no_masks(n)
        )
    return out
