"""build(): the encounters of a chunk, then what happened at each (fill.py), as one Timeline.

Encounters: yearly wellness visits, a diagnosis visit at each onset, follow-ups, acute episodes,
cancer work-up and chemotherapy, emergency + inpatient stays, a death certification. Each is given
a time of day, placed at a site (A, B or neither) and marked claimable when the person is enrolled
at the payer; encounters no source can see are dropped. The random draws happen in this order.
"""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue
from rwe_assets.synthetic.clinical.fill import fill
from rwe_assets.synthetic.clinical.natural_history import sex_value
from rwe_assets.synthetic.clinical.timeline import SITE_A, SITE_B, SITE_NONE, Kind, Prepared, Timeline
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.membership import Membership, enrolled
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.util import DAY_CLAIMS, DAY_END, DAY_START, SECONDS_PER_DAY, YEAR, expand

KEYS = ("person", "day", "kind", "type", "reason", "start", "stop")


class _Encounters:
    """Accumulates encounter candidates from the generators."""

    def __init__(self):
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, person, day, kind, etype, reason, start=None, stop=None):
        m = len(person)
        if m == 0:
            return
        self.parts.append(
            {
                "person": np.asarray(person, dtype=np.int64),
                "day": np.asarray(day, dtype=np.int64),
                "kind": np.full(m, kind, dtype=np.int8),
                "type": np.broadcast_to(np.asarray(etype, dtype=np.int16), (m,)).copy(),
                "reason": np.broadcast_to(np.asarray(reason, dtype=np.int16), (m,)).copy(),
                "start": np.full(m, -1, dtype=np.int64)
                if start is None
                else np.asarray(start, dtype=np.int64),
                "stop": np.full(m, -1, dtype=np.int64) if stop is None else np.asarray(stop, dtype=np.int64),
            }
        )

    def table(self) -> dict[str, np.ndarray]:
        if not self.parts:
            return {k: np.zeros(0, dtype=np.int64) for k in KEYS}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in KEYS}


def _wellness(enc, rng, persons: Persons, lo, hi, catalogue: Catalogue, density: float) -> None:
    """Yearly wellness visits near the birthday."""
    n = len(persons)
    et = catalogue.encounter_type
    years = np.arange(int((DAY_END - DAY_START) / YEAR) + 1)
    offset = rng.integers(0, 365, n)
    grid_day = DAY_START + np.floor(years[None, :] * YEAR).astype(np.int64) + offset[:, None]
    grid_age = (grid_day - persons.birth[:, None]) / YEAR
    p_well = np.minimum(np.where(grid_age < 18, 0.80, 0.50) * density, 0.98)
    take = (grid_day >= lo[:, None]) & (grid_day <= hi[:, None]) & (rng.random(grid_day.shape) < p_well)
    who, col = np.nonzero(take)
    child = grid_age[who, col] < 18
    kind = np.where(child, et("wellness_child").index, et("wellness_adult").index)
    enc.add(who, grid_day[who, col], Kind.WELLNESS, kind, -1)


def _cancer_visits(enc, c, who, day0, lo, hi, et) -> None:
    """Diagnosis consultation, screening two weeks before, six chemotherapy sessions 21 days apart."""
    enc.add(who, day0[who], Kind.CANCER_DX, et("consultation").index, c.index)
    if c.screening is not None:
        screen = who[day0[who] - 14 >= lo[who]]
        enc.add(screen, day0[screen] - 14, Kind.SCREENING, et("outpatient_procedure").index, c.index)
    owner, k = expand(np.full(len(who), 6))
    chemo_day = day0[who][owner] + 28 + 21 * k
    ok = chemo_day <= hi[who][owner]
    enc.add(who[owner][ok], chemo_day[ok], Kind.CHEMO, et("outpatient_procedure").index, c.index)


def _condition_visits(enc, rng, prepared: Prepared, lo, hi, alive, catalogue: Catalogue, density) -> None:
    """Chronic conditions and cancers: a diagnosis visit at onset, then follow-ups."""
    et = catalogue.encounter_type
    for c in catalogue.of_kind("chronic", "cancer"):
        day0 = prepared.onset[:, c.index].astype(np.int64)
        who = np.flatnonzero(alive & (day0 >= lo) & (day0 <= hi))
        if c.kind == "cancer":
            _cancer_visits(enc, c, who, day0, lo, hi, et)
        else:
            enc.add(who, day0[who], Kind.DIAGNOSIS, et("problem").index, c.index)
        if c.followups_per_year > 0:
            start = np.maximum(day0 + 30, lo)
            span = np.where(alive & (day0 <= hi), hi - start, 0)
            count = rng.poisson(c.followups_per_year * density * np.clip(span, 0, None) / YEAR)
            owner, _ = expand(count)
            day = start[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
            enc.add(owner, day, Kind.FOLLOWUP, et("followup").index, c.index)


def _acute_visits(enc, rng, persons: Persons, lo, hi, alive, catalogue: Catalogue, density) -> None:
    for c in catalogue.of_kind("acute"):
        start = lo if c.from_day is None else np.maximum(lo, c.from_day)
        span = np.where(alive, hi - start, 0)
        mid_age = ((start + hi) / 2 - persons.birth) / YEAR
        rate = sex_value(c.rate, persons.sex) * np.where(mid_age < 18, c.child_factor, 1.0) * density
        count = rng.poisson(rate * np.clip(span, 0, None) / YEAR)
        owner, _ = expand(count)
        day = start[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
        kind = Kind.EMERGENCY if c.encounter == "emergency" else Kind.ACUTE
        enc.add(owner, day, kind, catalogue.encounter_type(c.encounter).index, c.index)


def _hospital_visits(enc, rng, events: dict[str, np.ndarray], catalogue: Catalogue) -> None:
    """Hospital events: an emergency visit, then the inpatient stay."""
    if not len(events["person"]):
        return
    et = catalogue.encounter_type
    m = len(events["person"])
    er_start = events["day"] * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, m)
    er_stop = er_start + rng.integers(2 * 3600, 6 * 3600, m)
    ip_stop = er_stop + events["stay"] * SECONDS_PER_DAY + rng.integers(0, 6 * 3600, m)
    ip_stop = np.minimum(ip_stop, (DAY_END + 1) * SECONDS_PER_DAY - 1)
    person, cond = events["person"], events["cond"]
    enc.add(person, events["day"], Kind.EMERGENCY, et("emergency").index, cond, er_start, er_stop)
    enc.add(person, er_stop // SECONDS_PER_DAY, Kind.INPATIENT, et("inpatient").index, cond, er_stop, ip_stop)


def _candidates(rng, persons: Persons, prepared: Prepared, catalogue: Catalogue, config: NoiseConfig):
    """Every encounter inside the person's life and the window, before times and places."""
    lo = np.maximum(persons.birth.astype(np.int64), DAY_START)
    hi = np.minimum(persons.death.astype(np.int64), DAY_END)
    alive = hi >= lo
    enc = _Encounters()
    _wellness(enc, rng, persons, lo, hi, catalogue, config.density)
    _condition_visits(enc, rng, prepared, lo, hi, alive, catalogue, config.density)
    _acute_visits(enc, rng, persons, lo, hi, alive, catalogue, config.density)
    _hospital_visits(enc, rng, prepared.events, catalogue)
    dead = np.flatnonzero((persons.death <= DAY_END) & alive)
    certification = catalogue.encounter_type("death_certification").index
    enc.add(dead, persons.death[dead], Kind.DEATH, certification, prepared.cause[dead])
    table = enc.table()
    keep = (table["day"] <= hi[table["person"]]) & (table["day"] >= lo[table["person"]])
    return {k: v[keep] for k, v in table.items()}


def _times(rng, table: dict[str, np.ndarray], catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Start (office hours unless set) and stop (the encounter type's duration) in seconds."""
    m = len(table["person"])
    minutes_lo = np.array([e.minutes[0] for e in catalogue.encounter_types])[table["type"]]
    minutes_hi = np.array([e.minutes[1] for e in catalogue.encounter_types])[table["type"]]
    office = 8 * 3600 + rng.integers(0, 9 * 3600, m)
    start = np.where(table["start"] >= 0, table["start"], table["day"] * SECONDS_PER_DAY + office)
    duration = (minutes_lo + rng.random(m) * (minutes_hi - minutes_lo)).astype(np.int64) * 60
    stop = np.where(table["stop"] >= 0, table["stop"], start + duration)
    return start, stop


def _places(rng, table, start, stop, membership: Membership) -> dict[str, np.ndarray]:
    """Site, duplicate record and claim of each visible encounter, sorted by (person, start)."""
    m = len(table["person"])
    day = start // SECONDS_PER_DAY
    person = table["person"]
    ms = membership
    in_a = (ms.a_start[person] <= day) & (day <= ms.a_end[person]) & ms.in_a[person]
    in_b = (ms.b_start[person] <= day) & (day <= ms.b_end[person]) & ms.in_b[person]
    pick_a = in_a & (~in_b | (rng.random(m) < 0.5))
    site = np.where(pick_a, SITE_A, np.where(in_b, SITE_B, SITE_NONE)).astype(np.int8)
    claim, span = enrolled(ms, person, day)
    claim &= (day >= DAY_CLAIMS) & (table["kind"] != Kind.DEATH)
    visible = (site >= 0) | claim
    order = np.lexsort((start, person))
    order = order[visible[order]]
    out = {"person": person, "start": start, "stop": stop, "kind": table["kind"], "type": table["type"]}
    out |= {"reason": table["reason"], "site": site, "claim": claim, "span": span}
    out = {k: v[order] for k, v in out.items()}
    # an inpatient stay is at the hospital of its emergency visit (the encounter just before it)
    person, kind, site = out["person"], out["kind"], out["site"]
    ip = np.flatnonzero(kind == Kind.INPATIENT)
    before = np.maximum(ip - 1, 0)
    same = (person[before] == person[ip]) & (kind[before] == Kind.EMERGENCY)
    site[ip[same]] = site[before[same]]
    day = out["start"] // SECONDS_PER_DAY
    dup_day = np.where(site == SITE_A, ms.a_dup_day[person], ms.b_dup_day[person])
    out["record"] = ((site >= 0) & (day >= dup_day)).astype(np.int8)
    out["claim_record"] = (out["claim"] & (out["span"] >= ms.payer_dup_span[person])).astype(np.int8)
    return out


def build(
    rng: np.random.Generator,
    persons: Persons,
    membership: Membership,
    prepared: Prepared,
    catalogue: Catalogue,
    config: NoiseConfig,
) -> Timeline:
    table = _candidates(rng, persons, prepared, catalogue, config)
    start, stop = _times(rng, table, catalogue)
    encounters = _places(rng, table, start, stop, membership)
    return fill(rng, persons, membership, prepared, catalogue, encounters)
