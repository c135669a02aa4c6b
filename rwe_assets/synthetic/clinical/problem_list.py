"""What an EHR site records once per patient rather than per visit: the problem list (chronic
conditions, cancers and histories, at the site's first visit on or after onset, with the true onset
date) and allergies (at the site's first visit, with an auto-injector where the allergy calls for
one)."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.clinical.content import Content, Visits
from rwe_assets.synthetic.clinical.timeline import SITE_A, SITE_B
from rwe_assets.synthetic.util import DAY_START


def problem_list(c: Content, v: Visits) -> None:
    """One row per condition and site, at the first visit of the site on or after onset (or the
    first visit at all when onset came earlier)."""
    onset, person, day = c.prepared.onset, v.person, v.day
    for s in (SITE_A, SITE_B):
        rows = np.flatnonzero(v.site == s)
        if len(rows) == 0:
            continue
        key = person[rows] * 100_000 + (day[rows] - DAY_START + 50_000)
        last_day = np.full(len(c.persons), -1, dtype=np.int64)
        np.maximum.at(last_day, person[rows], day[rows])
        for cond in c.catalogue.of_kind("chronic", "cancer", "history"):
            who = np.flatnonzero((onset[:, cond.index] <= last_day) & (last_day >= 0))
            if len(who) == 0:
                continue
            target = who * 100_000 + (
                np.maximum(onset[who, cond.index], DAY_START - 40_000) - DAY_START + 50_000
            )
            pos = np.searchsorted(key, target)
            ok = pos < len(rows)
            pos, who = pos[ok], who[ok]
            ok = person[rows[pos]] == who
            c.emit("cond", enc=rows[pos[ok]], cond=cond.index, start=onset[who[ok], cond.index], stop=-1)


def allergies(c: Content, v: Visits) -> None:
    person = v.person
    for s in (SITE_A, SITE_B):
        rows = np.flatnonzero(v.site == s)
        if len(rows) == 0:
            continue
        first = rows[np.r_[True, person[rows][1:] != person[rows][:-1]]]
        for a in c.catalogue.allergies:
            chosen = first[c.prepared.allergy[person[first], a.index]]
            onset_day = c.persons.birth[person[chosen]] + c.rng.integers(365, 8 * 365, len(chosen))
            onset_day = np.minimum(onset_day, v.day[chosen])
            c.emit("allergy", enc=chosen, allergy=a.index, start=onset_day)
            if a.drug is not None:
                c.emit("med", enc=chosen, drug=a.drug, start=v.start[chosen], stop=-1, reason=-1, dispenses=1)
