"""Drug orders at EHR encounters and pharmacy fills at the payer, for chronic conditions.

A condition's regimen is one drug per person ("one", drawn in natural_history.py) or all its drugs
("all"), plus an optional add-on some persons take. Orders are valid a year (or to death); fills
follow the days of supply from treatment start while the person is enrolled."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.clinical.content import Content, Visits
from rwe_assets.synthetic.membership import enrolled
from rwe_assets.synthetic.util import DAY_CLAIMS, DAY_END, SECONDS_PER_DAY, expand


def _regimen(c: Content, who: np.ndarray, cond) -> list[tuple[np.ndarray, np.ndarray]]:
    """(bool mask over `who`, drug per row of `who`) of each drug the persons `who` take."""
    prep = c.prepared
    if cond.regimen == "all":
        taken = [(np.ones(len(who), dtype=bool), np.full(len(who), d)) for d in cond.drugs]
    else:
        taken = [(np.ones(len(who), dtype=bool), prep.drug_pick[who, cond.index].astype(np.int64))]
    if cond.add_on is not None:
        taken.append((prep.add_on[who, cond.index], np.full(len(who), cond.add_on[0])))
    return taken


def orders(c: Content, v: Visits, rows: np.ndarray, cond) -> None:
    """Drug orders for condition `cond` at these encounters, valid a year (or to death)."""
    if len(rows) == 0 or not cond.drugs:
        return
    hi = v.hi[rows]
    stop = v.start[rows] + 365 * SECONDS_PER_DAY
    stop = np.where(stop // SECONDS_PER_DAY >= hi, np.where(hi >= DAY_END, -1, hi * SECONDS_PER_DAY), stop)
    supply_of = np.array([d.days for d in c.catalogue.drugs])
    for chosen, drug in _regimen(c, v.person[rows], cond):
        c.emit(
            "med",
            enc=rows[chosen],
            drug=drug[chosen],
            start=v.start[rows][chosen],
            stop=stop[chosen],
            reason=cond.index,
            dispenses=np.maximum(365 // supply_of[drug][chosen], 1),
        )


def pharmacy_fills(c: Content) -> None:
    """Fills of chronic drugs while enrolled: every days-supply from treatment start (onset plus up
    to two weeks), with missed fills and a few days of jitter."""
    rng, prep, ms = c.rng, c.prepared, c.membership
    payer = np.flatnonzero(ms.in_payer)
    hi = np.minimum(c.persons.death.astype(np.int64), DAY_END)
    supply_of = np.array([d.days for d in c.catalogue.drugs])
    for cond in c.catalogue.of_kind("chronic"):
        if not cond.drugs:
            continue
        who = payer[prep.onset[payer, cond.index] <= hi[payer]]
        if len(who) == 0:
            continue
        for taking, drug in _regimen(c, who, cond):
            owners, drug = who[taking], drug[taking]
            supply = supply_of[drug]
            begin = np.maximum(
                prep.onset[owners, cond.index].astype(np.int64) + rng.integers(0, 15, len(owners)), DAY_CLAIMS
            )
            count = np.clip((hi[owners] - begin) // supply + 1, 0, None)
            owner, k = expand(count)
            fill_day = begin[owner] + k * supply[owner] + rng.integers(-3, 4, len(owner))
            keep = (
                (rng.random(len(owner)) > 0.12) & (fill_day <= hi[owners][owner]) & (fill_day >= DAY_CLAIMS)
            )
            p, d, fd = owners[owner][keep], drug[owner][keep], fill_day[keep]
            ok, span = enrolled(ms, p, fd)
            record = (span >= ms.payer_dup_span[p]).astype(np.int8)
            c.emit("fill", person=p, drug=d, day=fd, record=record, ok=ok)
