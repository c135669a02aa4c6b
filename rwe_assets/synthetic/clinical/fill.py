"""fill(): what happens at each encounter of a chunk, assembled into the Timeline.

The rules run in a fixed order, the order of their random draws (changing it changes every file):
wellness, diagnosis, follow-up, acute, hospital events, cancer, death (visits.py), then the problem
list and allergies (problem_list.py) and pharmacy fills (medications.py). Each event table is then
sorted by encounter, stable, so the rows of one encounter stay together in the order emitted."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue
from rwe_assets.synthetic.clinical import visits
from rwe_assets.synthetic.clinical.content import Content, Visits
from rwe_assets.synthetic.clinical.medications import pharmacy_fills
from rwe_assets.synthetic.clinical.observations import observations
from rwe_assets.synthetic.clinical.problem_list import allergies, problem_list
from rwe_assets.synthetic.clinical.timeline import Prepared, Timeline
from rwe_assets.synthetic.membership import Membership
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.util import DAY_END, SECONDS_PER_DAY, YEAR

I64, I16, F64 = np.int64, np.int16, np.float64
TABLES = {
    "cond": {"enc": I64, "cond": I16, "start": I64, "stop": I64},
    "med": {"enc": I64, "drug": I16, "start": I64, "stop": I64, "reason": I16, "dispenses": I64},
    "proc": {"enc": I64, "proc": I16, "reason": I16},
    "panel": {"enc": I64, "panel": I16},
    "imm": {"enc": I64, "vax": I16},
    "allergy": {"enc": I64, "allergy": I16, "start": I64},
    "device": {"enc": I64, "device": I16},
}
DIRECT_OBSERVATIONS = {"enc": I64, "lab": I16, "value": F64, "text": I16}
FILLS = {"person": I64, "drug": I16, "day": I64, "record": np.int8, "ok": bool}
# Timeline field prefix of each event table's columns
PREFIX = {"cond": "c", "med": "m", "proc": "p", "panel": "pn", "imm": "i", "allergy": "a", "device": "d"}


def _visits(persons: Persons, prepared: Prepared, catalogue: Catalogue, e: dict[str, np.ndarray]) -> Visits:
    """The encounters (`e`, from encounters.py) with the values the rules read of each."""
    person, site = e["person"], e["site"]
    day = e["start"] // SECONDS_PER_DAY
    kinds = ("chronic", "cancer", "history")
    return Visits(
        person=person,
        start=e["start"],
        stop=e["stop"],
        etype=e["type"],
        kind=e["kind"],
        reason=e["reason"],
        site=site,
        record=e["record"],
        claim=e["claim"],
        claim_record=e["claim_record"],
        day=day,
        age=(day - persons.birth[person]) / YEAR,
        sex=persons.sex[person],
        ehr=site >= 0,
        hi=np.minimum(persons.death[person].astype(np.int64), DAY_END),
        active={c.index: prepared.onset[person, c.index] <= day for c in catalogue.of_kind(*kinds)},
    )


def _by_encounter(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(table["enc"], kind="stable")
    return {k: v[order] for k, v in table.items()}


def _timeline(c: Content, v: Visits) -> Timeline:
    tables = {name: _by_encounter(c.collect(name, keys)) for name, keys in TABLES.items()}
    obs = observations(c, v, tables["panel"], c.collect("obs", DIRECT_OBSERVATIONS))
    fill = c.collect("fill", FILLS)
    fill = {k: col[fill["ok"]] for k, col in fill.items()}
    order = np.lexsort((fill["drug"], fill["day"], fill["person"]))
    events = {f"{PREFIX[name]}_{k}": col for name, t in tables.items() for k, col in t.items()}
    events |= {f"o_{k}": col for k, col in obs.items()}
    events |= {f"f_{k}": fill[k][order] for k in ("person", "drug", "day", "record")}
    return Timeline(
        e_person=v.person,
        e_start=v.start,
        e_stop=v.stop,
        e_type=v.etype,
        e_kind=v.kind,
        e_reason=v.reason,
        e_site=v.site,
        e_record=v.record,
        e_claim=v.claim,
        e_claim_record=v.claim_record,
        **events,
    )


def fill(
    rng: np.random.Generator,
    persons: Persons,
    membership: Membership,
    prepared: Prepared,
    catalogue: Catalogue,
    encounters: dict[str, np.ndarray],
) -> Timeline:
    v = _visits(persons, prepared, catalogue, encounters)
    c = Content(rng, persons, membership, prepared, catalogue)
    rules = (visits.wellness, visits.diagnosis, visits.followup, visits.acute, visits.hospital_events)
    for rule in (*rules, visits.cancer, visits.death, problem_list, allergies):
        rule(c, v)
    pharmacy_fills(c)
    return _timeline(c, v)
