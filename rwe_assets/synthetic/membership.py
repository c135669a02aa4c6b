"""Who is seen by which source, and when.

EHR sites: a person at a site is seen there during a window (registration to leaving, death or the
extract); a person at both sites moved from one to the other, with an overlap in which visits go to
either. Payer: up to four enrollment spans of whole months between CLAIMS_START and the extract,
with gaps and plan (contract) changes. Within-source duplicates: from a switch day on (EHR) or from
an enrollment span on (payer), the source files the person under a second id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic.config import CLAIMS_START, EXTRACT_DATE, NoiseConfig
from rwe_assets.synthetic.util import DAY_END, DAY_START, NEVER

NO_DAY = np.int32(-1)
MAX_SPANS = 4
CLAIM_MONTHS = (EXTRACT_DATE.year - CLAIMS_START.year) * 12 + (EXTRACT_DATE.month - CLAIMS_START.month)
CONTRACTS = ("H2001", "H2107", "H3312", "S4802", "S5617", "R7409")


@dataclass
class Membership:
    in_a: np.ndarray
    in_b: np.ndarray
    in_payer: np.ndarray
    a_start: np.ndarray  # int32 window of site A, -1 if not there
    a_end: np.ndarray
    b_start: np.ndarray
    b_end: np.ndarray
    a_dup_day: np.ndarray  # int32: encounters from this day on go to a second record; NEVER if none
    b_dup_day: np.ndarray
    span_start: np.ndarray  # int16 [n, MAX_SPANS] month index from CLAIMS_START, -1 if unused
    span_end: np.ndarray  # int16 [n, MAX_SPANS] inclusive
    span_contract: np.ndarray  # int8 [n, MAX_SPANS] index into CONTRACTS
    payer_dup_span: (
        np.ndarray
    )  # int8: spans from this index on are filed under a second member id (MAX_SPANS: none)


def month_of(day: np.ndarray) -> np.ndarray:
    """Month index from CLAIMS_START of a day number (negative before it)."""
    dates = np.asarray(day, dtype="datetime64[D]")
    months = dates.astype("datetime64[M]").astype(np.int64)
    start = np.datetime64(CLAIMS_START, "M").astype(np.int64)
    return months - start


def month_first_day(month: np.ndarray) -> np.ndarray:
    start = np.datetime64(CLAIMS_START, "M").astype(np.int64)
    return (
        (np.asarray(month, dtype=np.int64) + start)
        .astype("datetime64[M]")
        .astype("datetime64[D]")
        .astype(np.int64)
    )


def month_last_day(month: np.ndarray) -> np.ndarray:
    return month_first_day(np.asarray(month, dtype=np.int64) + 1) - 1


def _window(rng, lo, hi, present):
    """A registration window inside [lo, hi]: often from lo, sometimes later; sometimes leaving early."""
    n = len(lo)
    span = np.maximum(hi - lo, 0)
    late = rng.random(n) < 0.45
    start = lo + np.where(late, (rng.random(n) * 0.5 * span).astype(np.int64), 0)
    leaves = rng.random(n) < 0.15
    end = np.where(leaves, start + ((hi - start) * rng.uniform(0.5, 1.0, n)).astype(np.int64), hi)
    end = np.maximum(end, np.minimum(start + 30, hi))
    return np.where(present, start, NO_DAY).astype(np.int32), np.where(present, end, NO_DAY).astype(np.int32)


def assign(rng: np.random.Generator, birth: np.ndarray, death: np.ndarray, config: NoiseConfig) -> Membership:
    n = len(birth)
    lo = np.maximum(birth.astype(np.int64), DAY_START)
    hi = np.minimum(death.astype(np.int64), DAY_END)
    cov_a, cov_b, overlap = (
        config.coverage_ehr_site_a,
        config.coverage_ehr_site_b,
        config.overlap_site_b_given_a,
    )
    in_a = rng.random(n) < cov_a
    p_b_without_a = 0.0 if cov_a >= 1.0 else max(0.0, (cov_b - cov_a * overlap) / (1.0 - cov_a))
    in_b = np.where(in_a, rng.random(n) < overlap, rng.random(n) < p_b_without_a)
    in_payer = rng.random(n) < config.coverage_payer
    # the payer only sees people alive after CLAIMS_START
    in_payer &= hi >= month_first_day(np.zeros(1))[0]
    orphan = ~(in_a | in_b | in_payer)
    # someone who died before the claims window can only be seen by an EHR site
    to_payer = orphan & (hi >= month_first_day(np.zeros(1))[0])
    in_payer |= to_payer
    in_a |= orphan & ~to_payer

    a_start, a_end = _window(rng, lo, hi, in_a & ~in_b)
    b_start, b_end = _window(rng, lo, hi, in_b & ~in_a)
    both = in_a & in_b
    if both.any():
        span = np.maximum(hi - lo, 2)
        switch = lo + (span * rng.uniform(0.2, 0.8, n)).astype(np.int64)
        extra = rng.integers(0, 366, n)
        a_first = rng.random(n) < 0.5
        first_end = np.minimum(switch + extra, hi)
        a_start = np.where(both, np.where(a_first, lo, switch), a_start).astype(np.int32)
        a_end = np.where(both, np.where(a_first, first_end, hi), a_end).astype(np.int32)
        b_start = np.where(both, np.where(a_first, switch, lo), b_start).astype(np.int32)
        b_end = np.where(both, np.where(a_first, hi, first_end), b_end).astype(np.int32)

    def dup_day(present, start, end):
        dup = present & (rng.random(n) < config.duplicate_rate) & (end - start > 60)
        day = start + ((end - start) * rng.uniform(0.2, 0.8, n)).astype(np.int64)
        return np.where(dup, day, NEVER).astype(np.int32)

    a_dup_day = dup_day(in_a, a_start, a_end)
    b_dup_day = dup_day(in_b, b_start, b_end)

    span_start, span_end, span_contract = _spans(rng, lo, hi, in_payer)
    used = (span_start >= 0).sum(axis=1)
    payer_dup_span = np.full(n, MAX_SPANS, dtype=np.int8)
    dup = in_payer & (rng.random(n) < config.duplicate_rate)
    # a re-enrollment under a new member id: from the second span if there is one, else the
    # single span is cut in two at a month boundary
    single = dup & (used == 1) & (span_end[:, 0] - span_start[:, 0] >= 2)
    if single.any():
        cut = (
            span_start[:, 0] + 1 + ((span_end[:, 0] - span_start[:, 0] - 1) * rng.random(n)).astype(np.int64)
        )
        span_start[single, 1] = cut[single]
        span_end[single, 1] = span_end[single, 0]
        span_contract[single, 1] = span_contract[single, 0]
        span_end[single, 0] = cut[single] - 1
        used = (span_start >= 0).sum(axis=1)
    payer_dup_span[dup & (used >= 2)] = 1
    return Membership(
        in_a=in_a,
        in_b=in_b,
        in_payer=in_payer,
        a_start=a_start,
        a_end=a_end,
        b_start=b_start,
        b_end=b_end,
        a_dup_day=a_dup_day,
        b_dup_day=b_dup_day,
        span_start=span_start,
        span_end=span_end,
        span_contract=span_contract,
        payer_dup_span=payer_dup_span,
    )


def _spans(rng, lo, hi, present):
    n = len(lo)
    first = np.maximum(month_of(lo), 0)
    last = np.minimum(month_of(hi), CLAIM_MONTHS - 1)
    start = np.full((n, MAX_SPANS), -1, dtype=np.int16)
    end = np.full((n, MAX_SPANS), -1, dtype=np.int16)
    contract = np.zeros((n, MAX_SPANS), dtype=np.int8)
    cursor = first + np.where(rng.random(n) < 0.5, 0, rng.integers(0, 48, n))
    active = present & (cursor <= last)
    plan = rng.integers(0, len(CONTRACTS), n)
    for k in range(MAX_SPANS):
        length = np.where(rng.random(n) < 0.55, CLAIM_MONTHS, rng.integers(6, 60, n))
        stop = np.minimum(cursor + length - 1, last)
        start[active, k] = cursor[active]
        end[active, k] = stop[active]
        contract[active, k] = plan[active]
        # next span: after a gap of 1-12 months, or at once with another plan (a plan change)
        change_only = rng.random(n) < 0.4
        cursor = stop + 1 + np.where(change_only, 0, rng.integers(1, 13, n))
        plan = np.where(change_only, (plan + rng.integers(1, len(CONTRACTS), n)) % len(CONTRACTS), plan)
        active = active & (cursor <= last)
    return start, end, contract


def enrolled(membership: Membership, person: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enrolled at the payer on that day, index of the span) for each (person, day)."""
    month = month_of(day)
    starts = membership.span_start[person]
    ends = membership.span_end[person]
    inside = (starts >= 0) & (starts <= month[:, None]) & (month[:, None] <= ends)
    found = inside.any(axis=1) & membership.in_payer[person]
    return found, np.argmax(inside, axis=1)
