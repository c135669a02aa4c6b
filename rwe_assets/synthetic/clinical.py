"""The clinical life of one chunk of persons inside the data window, as columnar event tables.

Order of the model (each step vectorized over the chunk with numpy):
1. `prepare`: onset of every chronic condition and cancer (per person, from the catalogue's
   lifetime probabilities and onset ages; BRCA carriers get breast cancer earlier and more often),
   yearly mortality (Gompertz, plus cancer), hospital events (myocardial infarction for people with
   coronary heart disease, sepsis for the old) that may end in death.
2. `build`: encounters (yearly wellness visits, a diagnosis visit at each onset, follow-ups,
   acute episodes, cancer work-up and chemotherapy, emergency + inpatient stays, a death
   certification), each placed at a site (A, B or neither) and marked claimable when the person is
   enrolled at the payer; encounters no source can see are dropped.
3. The encounters' content: problem-list conditions (recorded at the first visit of each site after
   onset, with the true onset date), findings, drug orders and pharmacy fills, procedures, lab panels
   and their results, vaccines, allergies and implanted devices.
Nothing happens after death; a treatment never starts before its condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.membership import Membership, enrolled
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.util import DAY_CLAIMS, DAY_END, DAY_START, NEVER, SECONDS_PER_DAY, YEAR, expand


class Kind:
    WELLNESS = 0
    FOLLOWUP = 1
    DIAGNOSIS = 2
    ACUTE = 3
    EMERGENCY = 4
    INPATIENT = 5
    CANCER_DX = 6
    SCREENING = 7
    CHEMO = 8
    DEATH = 9


SITE_NONE, SITE_A, SITE_B = -1, 0, 1
SMOKING_TEXTS = ("Never smoker", "Former smoker", "Every day smoker")
NATURAL_CAUSE = "Natural death"


def text_table(catalogue: Catalogue) -> tuple[str, ...]:
    """Texts of text-valued observations: smoking status, then causes of death (a condition's
    description, by condition index), then the natural cause."""
    return (*SMOKING_TEXTS, *(c.description for c in catalogue.conditions), NATURAL_CAUSE)


@dataclass
class Prepared:
    onset: np.ndarray  # int32 [n, conditions]: onset day, NEVER if not (chronic, cancer, history)
    drug_pick: np.ndarray  # int16 [n, conditions]: the drug of a "one" regimen, -1 otherwise
    add_on: np.ndarray  # bool [n, conditions]: the add-on drug is taken
    obese_bmi: np.ndarray  # float: BMI after obesity onset
    events: dict[str, np.ndarray]  # hospital events: person, cond, day, stay
    cause: np.ndarray  # int16: condition index of the cause of death, -1 natural
    allergy: np.ndarray  # bool [n, allergies]


@dataclass
class Timeline:
    """Encounters and their content. Encounter arrays are sorted by (person, start)."""

    e_person: np.ndarray
    e_start: np.ndarray  # int64 seconds
    e_stop: np.ndarray
    e_type: np.ndarray  # int16 encounter type
    e_kind: np.ndarray  # int8 Kind
    e_reason: np.ndarray  # int16 condition, -1
    e_site: np.ndarray  # int8 SITE_*
    e_record: np.ndarray  # int8: 0 main record, 1 duplicate record (EHR sites)
    e_claim: np.ndarray  # bool: the payer is billed
    e_claim_record: np.ndarray  # int8: 0 main member id, 1 second member id
    # conditions (EHR sites only)
    c_enc: np.ndarray
    c_cond: np.ndarray
    c_start: np.ndarray  # day
    c_stop: np.ndarray  # day, -1 open
    # drug orders (EHR)
    m_enc: np.ndarray
    m_drug: np.ndarray
    m_start: np.ndarray  # seconds
    m_stop: np.ndarray  # seconds, -1 open
    m_reason: np.ndarray
    m_dispenses: np.ndarray
    # procedures, lab panels, vaccines (EHR and claims)
    p_enc: np.ndarray
    p_proc: np.ndarray
    p_reason: np.ndarray
    pn_enc: np.ndarray
    pn_panel: np.ndarray
    i_enc: np.ndarray
    i_vax: np.ndarray
    # observations (EHR)
    o_enc: np.ndarray
    o_lab: np.ndarray
    o_value: np.ndarray
    o_text: np.ndarray  # index into text_table, -1 numeric
    # allergies and devices (EHR)
    a_enc: np.ndarray
    a_allergy: np.ndarray
    a_start: np.ndarray  # day
    d_enc: np.ndarray
    d_device: np.ndarray
    # pharmacy fills (payer)
    f_person: np.ndarray
    f_drug: np.ndarray
    f_day: np.ndarray
    f_record: np.ndarray


def _sex_value(pair: tuple[float, float], sex: np.ndarray) -> np.ndarray:
    return np.where(sex == 1, pair[1], pair[0])


def _onset_days(rng, birth, spec, n):
    mean, sd, low, high = spec
    age = np.clip(rng.normal(mean, sd, n), low, high)
    return (birth + age * YEAR).astype(np.int64)


def prepare(
    rng: np.random.Generator, persons: Persons, catalogue: Catalogue, config: NoiseConfig
) -> Prepared:
    n = len(persons)
    conditions = catalogue.conditions
    onset = np.full((n, len(conditions)), NEVER, dtype=np.int32)
    drug_pick = np.full((n, len(conditions)), -1, dtype=np.int16)
    add_on = np.zeros((n, len(conditions)), dtype=bool)
    smoker = persons.smoker >= 1
    for c in catalogue.of_kind("chronic", "cancer"):
        p = _sex_value(c.probability, persons.sex) * np.where(smoker, c.smoker_factor, 1.0)
        days = _onset_days(rng, persons.birth, c.onset_age, n)
        has = rng.random(n) < np.minimum(p, 0.95)
        if c.kind == "cancer" and c.carrier_onset_age is not None:
            carries = np.isin(
                persons.carrier, [v.index for v in catalogue.variants if v.condition == c.index]
            ) & (persons.carrier >= 0)
            p_carrier = _sex_value(c.carrier_probability, persons.sex)
            has = np.where(carries, rng.random(n) < p_carrier, has)
            days = np.where(carries, _onset_days(rng, persons.birth, c.carrier_onset_age, n), days)
        onset[:, c.index] = np.where(has, days, NEVER)
        if c.drugs and c.regimen == "one":
            drug_pick[:, c.index] = np.array(c.drugs)[rng.integers(0, len(c.drugs), n)]
        if c.add_on is not None:
            add_on[:, c.index] = rng.random(n) < c.add_on[1]
    for c in conditions:
        if c.excluded_by is not None:
            onset[onset[:, c.excluded_by] < NEVER, c.index] = NEVER
    obese_bmi = np.clip(rng.normal(34.0, 3.5, n), 30.0, 55.0)

    death, cause = _mortality(rng, persons, onset, catalogue)
    persons.death[:] = death
    events, history = _hospital_events(rng, persons, onset, catalogue, config, cause)
    for cond, days in history.items():
        onset[:, cond] = np.minimum(onset[:, cond], days)
    # an onset after death or after the extract never happens in this world
    onset[onset > np.minimum(persons.death, DAY_END)[:, None]] = NEVER
    allergy = np.stack([rng.random(n) < a.probability for a in catalogue.allergies], axis=1)
    return Prepared(onset, drug_pick, add_on, obese_bmi, events, cause, allergy)


def _mortality(rng, persons: Persons, onset, catalogue: Catalogue):
    """Yearly Gompertz hazard plus the hazard of an active cancer; returns (death day, cause)."""
    n = len(persons)
    death = np.full(n, NEVER, dtype=np.int64)
    cause = np.full(n, -1, dtype=np.int16)
    cancers = catalogue.of_kind("cancer")
    first_year = int(np.datetime64(DAY_START, "D").astype("datetime64[Y]").astype(int) + 1970)
    last_year = int(np.datetime64(DAY_END, "D").astype("datetime64[Y]").astype(int) + 1970)
    for year in range(first_year, last_year + 1):
        start = int(np.datetime64(f"{year}-01-01", "D").astype(np.int64))
        age = (start - persons.birth) / YEAR
        hazard = np.exp(-9.9 + 0.088 * np.clip(age, 0, None)) * (age >= 0)
        cancer_cause = np.full(n, -1, dtype=np.int16)
        for c in cancers:
            active = onset[:, c.index] <= start  # diagnosed before the year began
            hazard = hazard + np.where(active, c.death_hazard, 0.0)
            cancer_cause = np.where(active & (cancer_cause < 0), c.index, cancer_cause)
        dies = (death == NEVER) & (rng.random(n) < 1.0 - np.exp(-hazard))
        day = np.maximum(start + rng.integers(0, 365, n), persons.birth + 1)
        dies &= day <= DAY_END
        death = np.where(dies, day, death)
        cause = np.where(dies, cancer_cause, cause)
    return death.astype(np.int32), cause


def _hospital_events(rng, persons: Persons, onset, catalogue: Catalogue, config: NoiseConfig, cause):
    n = len(persons)
    lo = np.maximum(persons.birth.astype(np.int64), DAY_START)
    out = {k: [] for k in ("person", "cond", "day", "stay")}
    history: dict[int, np.ndarray] = {}
    for c in catalogue.of_kind("event"):
        hi = np.minimum(persons.death.astype(np.int64), DAY_END)
        start = lo.copy()
        if c.requires is not None:
            start = np.maximum(start, onset[:, c.requires].astype(np.int64) + 30)
        if c.min_age > 0:
            start = np.maximum(start, (persons.birth + c.min_age * YEAR).astype(np.int64))
        years = np.clip((hi - start) / YEAR, 0, None)
        rate = _sex_value(c.rate, persons.sex) * config.density
        count = np.minimum(rng.poisson(rate * years), 3)
        owner, _ = expand(count)
        if len(owner) == 0:
            continue
        day = start[owner] + (rng.random(len(owner)) * (hi - start)[owner]).astype(np.int64)
        stay = rng.integers(c.stay_days[0], c.stay_days[1] + 1, len(owner))
        dies = rng.random(len(owner)) < c.death_probability
        death_day = np.minimum(day + stay, DAY_END)
        order = np.lexsort((day, owner))
        owner, day, stay, dies, death_day = (a[order] for a in (owner, day, stay, dies, death_day))
        # the first fatal event ends the person's life; later events did not happen
        fatal_day = np.full(n, NEVER, dtype=np.int64)
        np.minimum.at(fatal_day, owner[dies], death_day[dies])
        keep = day <= np.minimum(fatal_day[owner], persons.death[owner])
        owner, day, stay = owner[keep], day[keep], stay[keep]
        earlier = fatal_day < persons.death
        persons.death[earlier] = fatal_day[earlier]
        cause[earlier] = c.index
        out["person"].append(owner)
        out["cond"].append(np.full(len(owner), c.index, dtype=np.int16))
        out["day"].append(day)
        out["stay"].append(stay)
        if c.history is not None:
            first = np.full(n, NEVER, dtype=np.int64)
            np.minimum.at(first, owner, day + stay)
            history[c.history] = np.minimum(first, NEVER).astype(np.int32)
    events = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in out.items()}
    return events, history


# --------------------------------------------------------------------------------------- encounters


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
        keys = ("person", "day", "kind", "type", "reason", "start", "stop")
        if not self.parts:
            return {k: np.zeros(0, dtype=np.int64) for k in keys}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in keys}


def build(
    rng: np.random.Generator,
    persons: Persons,
    membership: Membership,
    prepared: Prepared,
    catalogue: Catalogue,
    config: NoiseConfig,
) -> Timeline:
    n = len(persons)
    onset = prepared.onset
    lo = np.maximum(persons.birth.astype(np.int64), DAY_START)
    hi = np.minimum(persons.death.astype(np.int64), DAY_END)
    alive = hi >= lo
    enc = _Encounters()
    et = catalogue.encounter_type
    density = config.density

    # yearly wellness visits near the birthday
    years = np.arange(int((DAY_END - DAY_START) / YEAR) + 1)
    offset = rng.integers(0, 365, n)
    grid_day = DAY_START + np.floor(years[None, :] * YEAR).astype(np.int64) + offset[:, None]
    grid_age = (grid_day - persons.birth[:, None]) / YEAR
    p_well = np.minimum(np.where(grid_age < 18, 0.80, 0.50) * density, 0.98)
    take = (grid_day >= lo[:, None]) & (grid_day <= hi[:, None]) & (rng.random(grid_day.shape) < p_well)
    who, col = np.nonzero(take)
    well_day = grid_day[who, col]
    child = grid_age[who, col] < 18
    enc.add(
        who,
        well_day,
        Kind.WELLNESS,
        np.where(child, et("wellness_child").index, et("wellness_adult").index),
        -1,
    )

    # chronic conditions and cancers: a diagnosis visit at onset, then follow-ups
    for c in catalogue.of_kind("chronic", "cancer"):
        day0 = onset[:, c.index].astype(np.int64)
        diagnosed = alive & (day0 >= lo) & (day0 <= hi)
        who = np.flatnonzero(diagnosed)
        if c.kind == "cancer":
            enc.add(who, day0[who], Kind.CANCER_DX, et("consultation").index, c.index)
            if c.screening is not None:
                screen = who[day0[who] - 14 >= lo[who]]
                enc.add(screen, day0[screen] - 14, Kind.SCREENING, et("outpatient_procedure").index, c.index)
            sessions = np.arange(6)
            owner, k = expand(np.full(len(who), len(sessions)))
            chemo_day = day0[who][owner] + 28 + 21 * k
            ok = chemo_day <= hi[who][owner]
            enc.add(who[owner][ok], chemo_day[ok], Kind.CHEMO, et("outpatient_procedure").index, c.index)
        else:
            enc.add(who, day0[who], Kind.DIAGNOSIS, et("problem").index, c.index)
        if c.followups_per_year > 0:
            start = np.maximum(day0 + 30, lo)
            span = np.where(alive & (day0 <= hi), hi - start, 0)
            count = rng.poisson(c.followups_per_year * density * np.clip(span, 0, None) / YEAR)
            owner, _ = expand(count)
            day = start[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
            enc.add(owner, day, Kind.FOLLOWUP, et("followup").index, c.index)

    # acute episodes
    for c in catalogue.of_kind("acute"):
        start = lo if c.from_day is None else np.maximum(lo, c.from_day)
        span = np.where(alive, hi - start, 0)
        mid_age = ((start + hi) / 2 - persons.birth) / YEAR
        rate = _sex_value(c.rate, persons.sex) * np.where(mid_age < 18, c.child_factor, 1.0) * density
        count = rng.poisson(rate * np.clip(span, 0, None) / YEAR)
        owner, _ = expand(count)
        day = start[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
        kind = Kind.EMERGENCY if c.encounter == "emergency" else Kind.ACUTE
        enc.add(owner, day, kind, et(c.encounter).index, c.index)

    # hospital events: an emergency visit, then the inpatient stay
    ev = prepared.events
    if len(ev["person"]):
        m = len(ev["person"])
        er_start = ev["day"] * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, m)
        er_stop = er_start + rng.integers(2 * 3600, 6 * 3600, m)
        ip_stop = er_stop + ev["stay"] * SECONDS_PER_DAY + rng.integers(0, 6 * 3600, m)
        ip_stop = np.minimum(ip_stop, (DAY_END + 1) * SECONDS_PER_DAY - 1)
        enc.add(ev["person"], ev["day"], Kind.EMERGENCY, et("emergency").index, ev["cond"], er_start, er_stop)
        enc.add(
            ev["person"],
            er_stop // SECONDS_PER_DAY,
            Kind.INPATIENT,
            et("inpatient").index,
            ev["cond"],
            er_stop,
            ip_stop,
        )

    # death certification
    dead = np.flatnonzero((persons.death <= DAY_END) & alive)
    enc.add(dead, persons.death[dead], Kind.DEATH, et("death_certification").index, prepared.cause[dead])

    table = enc.table()
    keep = table["day"] <= hi[table["person"]]
    keep &= table["day"] >= lo[table["person"]]
    table = {k: v[keep] for k, v in table.items()}

    # times of day and durations
    m = len(table["person"])
    minutes_lo = np.array([e.minutes[0] for e in catalogue.encounter_types])[table["type"]]
    minutes_hi = np.array([e.minutes[1] for e in catalogue.encounter_types])[table["type"]]
    office = 8 * 3600 + rng.integers(0, 9 * 3600, m)
    start = np.where(table["start"] >= 0, table["start"], table["day"] * SECONDS_PER_DAY + office)
    duration = (minutes_lo + rng.random(m) * (minutes_hi - minutes_lo)).astype(np.int64) * 60
    stop = np.where(table["stop"] >= 0, table["stop"], start + duration)
    day = start // SECONDS_PER_DAY

    # sites, duplicate records, claims
    person = table["person"]
    in_a = (membership.a_start[person] <= day) & (day <= membership.a_end[person]) & membership.in_a[person]
    in_b = (membership.b_start[person] <= day) & (day <= membership.b_end[person]) & membership.in_b[person]
    pick_a = in_a & (~in_b | (rng.random(m) < 0.5))
    site = np.where(pick_a, SITE_A, np.where(in_b, SITE_B, SITE_NONE)).astype(np.int8)
    # an inpatient stay is at the hospital of its emergency visit (the encounter just before it)
    claim, span = enrolled(membership, person, day)
    claim &= (day >= DAY_CLAIMS) & (table["kind"] != Kind.DEATH)
    visible = (site >= 0) | claim
    order = np.lexsort((start, person))
    order = order[visible[order]]
    person, start, stop = person[order], start[order], stop[order]
    kind, etype, reason = table["kind"][order], table["type"][order], table["reason"][order]
    site, claim, span = site[order], claim[order], span[order]
    ip = np.flatnonzero(kind == Kind.INPATIENT)
    before = np.maximum(ip - 1, 0)
    same = (person[before] == person[ip]) & (kind[before] == Kind.EMERGENCY)
    site[ip[same]] = site[before[same]]
    day = start // SECONDS_PER_DAY
    dup_day = np.where(site == SITE_A, membership.a_dup_day[person], membership.b_dup_day[person])
    record = ((site >= 0) & (day >= dup_day)).astype(np.int8)
    claim_record = (claim & (span >= membership.payer_dup_span[person])).astype(np.int8)

    timeline = _Content(rng, persons, membership, prepared, catalogue, config).fill(
        person, start, stop, etype, kind, reason, site, record, claim, claim_record
    )
    return timeline


class _Content:
    """What happens at each encounter."""

    def __init__(self, rng, persons, membership, prepared, catalogue, config):
        self.rng, self.persons, self.membership = rng, persons, membership
        self.prepared, self.catalogue, self.config = prepared, catalogue, config
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {}

    def emit(self, table: str, **columns) -> None:
        lengths = {len(np.atleast_1d(v)) for v in columns.values() if np.ndim(v) > 0}
        if not lengths or max(lengths) == 0:
            return
        m = max(lengths)
        self.parts.setdefault(table, []).append(
            {
                k: (np.broadcast_to(v, (m,)).copy() if np.ndim(v) == 0 else np.asarray(v))
                for k, v in columns.items()
            }
        )

    def collect(self, table: str, keys: dict[str, type]) -> dict[str, np.ndarray]:
        parts = self.parts.get(table, [])
        if not parts:
            return {k: np.zeros(0, dtype=t) for k, t in keys.items()}
        return {k: np.concatenate([p[k] for p in parts]).astype(t) for k, t in keys.items()}

    def fill(self, person, start, stop, etype, kind, reason, site, record, claim, claim_record) -> Timeline:
        rng, persons, cat, prep = self.rng, self.persons, self.catalogue, self.prepared
        m = len(person)
        day = start // SECONDS_PER_DAY
        age = (day - persons.birth[person]) / YEAR
        sex = persons.sex[person]
        ehr = site >= 0
        onset = prep.onset
        hi = np.minimum(persons.death[person].astype(np.int64), DAY_END)
        active = {c.index: onset[person, c.index] <= day for c in cat.of_kind("chronic", "cancer", "history")}
        well = kind == Kind.WELLNESS

        def panel(rows, key):
            self.emit("panel", enc=rows, panel=cat.panel(key).index)

        def procedure(rows, key, why=-1):
            self.emit("proc", enc=rows, proc=cat.procedure(key).index, reason=why)

        # ---- wellness visits
        w = np.flatnonzero(well)
        panel(w, "vitals")
        smokers = w[age[w] >= 15]
        self.emit(
            "obs",
            enc=smokers,
            lab=cat.lab("tobacco_status").index,
            value=0.0,
            text=persons.smoker[person[smokers]],
        )
        for c in cat.of_kind("finding"):
            p = c.probability[0]
            chosen = w[(age[w] >= c.ages[0]) & (age[w] < c.ages[1]) & (rng.random(len(w)) < p) & ehr[w]]
            stop_day = np.minimum(day[chosen] + 365, hi[chosen])
            stop_day = np.where(stop_day >= DAY_END, -1, stop_day)
            self.emit("cond", enc=chosen, cond=c.index, start=day[chosen], stop=stop_day)
        screened = w[(age[w] >= 12) & (rng.random(len(w)) < 0.5)]
        procedure(screened, "depression_screening")
        procedure(screened, "phq2_screening")
        self.emit("obs", enc=screened, lab=cat.lab("phq2_score").index, value=np.nan, text=-1)
        procedure(w[(age[w] >= 18) & (rng.random(len(w)) < 0.4)], "care_needs_assessment")
        procedure(w[(age[w] >= 14) & (rng.random(len(w)) < 0.3)], "substance_use_assessment")
        procedure(
            w[(sex[w] == 1) & (age[w] >= 50) & (age[w] < 75) & (rng.random(len(w)) < 0.45)], "mammography"
        )
        procedure(w[(age[w] >= 50) & (rng.random(len(w)) < 0.07)], "colonoscopy")
        on_drugs = np.zeros(m, dtype=bool)
        for c in cat.of_kind("chronic", "cancer"):
            if c.drugs:
                on_drugs |= active[c.index]
        procedure(w[on_drugs[w]], "medication_reconciliation")
        for key, (min_age, probability) in cat.wellness_panels.items():
            needed = np.zeros(len(w), dtype=bool)
            for c in cat.of_kind("chronic"):
                if key in c.panels:
                    needed |= active[c.index][w]
            chosen = w[
                (age[w] >= min_age)
                & ((rng.random(len(w)) < probability) | (needed & (rng.random(len(w)) < 0.5)))
            ]
            panel(chosen, key)
        self._vaccines(w, day, age, person)
        # drug renewals for every active chronic condition
        for c in cat.of_kind("chronic"):
            if not c.drugs:
                continue
            rows = w[active[c.index][w] & ehr[w]]
            self._orders(rows, c, person, start, hi)

        # ---- diagnosis visits
        for c in cat.of_kind("chronic"):
            rows = np.flatnonzero((kind == Kind.DIAGNOSIS) & (reason == c.index))
            for key in c.panels:
                panel(rows, key)
            self._orders(rows[ehr[rows]], c, person, start, hi)
        # ---- follow-ups
        f = np.flatnonzero(kind == Kind.FOLLOWUP)
        panel(f, "bp")
        for c in cat.of_kind("chronic", "cancer"):
            rows = f[reason[f] == c.index]
            for key in c.panels:
                panel(rows[rng.random(len(rows)) < 0.6], key)
            for proc, probability in c.procedures:
                self.emit("proc", enc=rows[rng.random(len(rows)) < probability], proc=proc, reason=c.index)
        # ---- acute episodes (office, urgent care or emergency)
        for c in cat.of_kind("acute"):
            rows = np.flatnonzero(((kind == Kind.ACUTE) | (kind == Kind.EMERGENCY)) & (reason == c.index))
            length = rng.integers(c.days[0], c.days[1] + 1, len(rows))
            stop_day = np.minimum(day[rows] + length, hi[rows])
            stop_day = np.where(stop_day >= DAY_END, -1, stop_day)
            self.emit(
                "cond",
                enc=rows[ehr[rows]],
                cond=c.index,
                start=day[rows][ehr[rows]],
                stop=stop_day[ehr[rows]],
            )
            if c.encounter == "symptom":
                panel(rows[rng.random(len(rows)) < 0.5], "fever")
            for proc, probability in c.procedures:
                self.emit("proc", enc=rows[rng.random(len(rows)) < probability], proc=proc, reason=c.index)
            treated = rows[rng.random(len(rows)) < c.drug_probability]
            if c.drugs and len(treated):
                drug = np.array(c.drugs)[rng.integers(0, len(c.drugs), len(treated))]
                course = c.course_days * SECONDS_PER_DAY
                ehr_rows = ehr[treated]
                self.emit(
                    "med",
                    enc=treated[ehr_rows],
                    drug=drug[ehr_rows],
                    start=start[treated][ehr_rows],
                    stop=start[treated][ehr_rows] + course,
                    reason=c.index,
                    dispenses=1,
                )
                self.emit(
                    "fill",
                    person=person[treated],
                    drug=drug,
                    day=day[treated],
                    record=claim_record[treated],
                    ok=claim[treated],
                )
        # ---- hospital events
        for c in cat.of_kind("event"):
            er = np.flatnonzero((kind == Kind.EMERGENCY) & (reason == c.index))
            stay = np.flatnonzero((kind == Kind.INPATIENT) & (reason == c.index))
            self.emit(
                "cond",
                enc=er[ehr[er]],
                cond=c.index,
                start=day[er][ehr[er]],
                stop=np.minimum(day[er][ehr[er]] + 28, hi[er][ehr[er]]),
            )
            panel(er, "fever")
            panel(stay, "bmp")
            panel(stay, "cbc")
            for proc, probability in c.procedures:
                chosen = stay[rng.random(len(stay)) < probability]
                self.emit("proc", enc=chosen, proc=proc, reason=c.index)
                device = cat.procedures[proc].device
                if device is not None:
                    self.emit("device", enc=chosen[ehr[chosen]], device=device)
        # ---- cancer: screening, work-up, chemotherapy
        for c in cat.of_kind("cancer"):
            screen = np.flatnonzero((kind == Kind.SCREENING) & (reason == c.index))
            if c.screening is not None:
                self.emit("proc", enc=screen, proc=c.screening, reason=-1)
            dx = np.flatnonzero((kind == Kind.CANCER_DX) & (reason == c.index))
            for proc in c.workup:
                self.emit("proc", enc=dx, proc=proc, reason=c.index)
            panel(dx, "cbc")
            chemo = np.flatnonzero((kind == Kind.CHEMO) & (reason == c.index))
            procedure(chemo, "chemotherapy", c.index)
            for drug in c.chemotherapy:
                rows = chemo[ehr[chemo]]
                self.emit(
                    "med",
                    enc=rows,
                    drug=drug,
                    start=start[rows],
                    stop=stop[rows],
                    reason=c.index,
                    dispenses=1,
                )
        # ---- death
        d = np.flatnonzero(kind == Kind.DEATH)
        cause = np.where(reason[d] >= 0, 3 + reason[d], 3 + len(cat.conditions))
        self.emit("obs", enc=d, lab=cat.lab("cause_of_death").index, value=0.0, text=cause)

        self._problem_list(person, day, site)
        self._allergies(person, day, site, start)
        self._fills(claim, claim_record, person, day)
        return self._timeline(
            person, start, stop, etype, kind, reason, site, record, claim, claim_record, day, age
        )

    # -------------------------------------------------------------------------------- helpers

    def _orders(self, rows, c, person, start, hi) -> None:
        """Drug orders for condition c at these encounters, valid a year (or to death)."""
        if len(rows) == 0 or not c.drugs:
            return
        prep = self.prepared
        drugs = []
        if c.regimen == "all":
            drugs = [np.full(len(rows), d) for d in c.drugs]
            selected = [np.ones(len(rows), dtype=bool) for _ in c.drugs]
        else:
            drugs = [prep.drug_pick[person[rows], c.index].astype(np.int64)]
            selected = [np.ones(len(rows), dtype=bool)]
        if c.add_on is not None:
            drugs.append(np.full(len(rows), c.add_on[0]))
            selected.append(prep.add_on[person[rows], c.index])
        stop = start[rows] + 365 * SECONDS_PER_DAY
        stop = np.where(
            stop // SECONDS_PER_DAY >= hi[rows],
            np.where(hi[rows] >= DAY_END, -1, hi[rows] * SECONDS_PER_DAY),
            stop,
        )
        for drug, chosen in zip(drugs, selected, strict=True):
            supply = np.array([d.days for d in self.catalogue.drugs])[drug]
            self.emit(
                "med",
                enc=rows[chosen],
                drug=drug[chosen],
                start=start[rows][chosen],
                stop=stop[chosen],
                reason=c.index,
                dispenses=np.maximum(365 // supply[chosen], 1),
            )

    def _vaccines(self, w, day, age, person) -> None:
        rng = self.rng
        for v in self.catalogue.vaccines:
            if v.schedule == "yearly":
                rows = w[(age[w] >= v.min_age) & (rng.random(len(w)) < v.probability)]
            elif v.schedule == "ages":
                rows = w[
                    np.isin(np.floor(age[w]).astype(np.int64), v.ages) & (rng.random(len(w)) < v.probability)
                ]
            else:
                eligible = w[age[w] >= v.min_age]
                if v.until_day is not None:
                    eligible = eligible[day[eligible] <= v.until_day]
                # the first eligible wellness visit of each person
                first = (
                    eligible[np.r_[True, person[eligible][1:] != person[eligible][:-1]]]
                    if len(eligible)
                    else eligible
                )
                rows = first[rng.random(len(first)) < v.probability]
            self.emit("imm", enc=rows, vax=v.index)

    def _problem_list(self, person, day, site) -> None:
        """Chronic conditions, cancers and histories: one row per site, at the first visit of the
        site on or after onset (or the first visit at all when onset came earlier)."""
        onset = self.prepared.onset
        for s in (0, 1):
            rows = np.flatnonzero(site == s)
            if len(rows) == 0:
                continue
            key = person[rows] * 100_000 + (day[rows] - DAY_START + 50_000)
            last_day = np.full(len(self.persons), -1, dtype=np.int64)
            np.maximum.at(last_day, person[rows], day[rows])
            for c in self.catalogue.of_kind("chronic", "cancer", "history"):
                who = np.flatnonzero((onset[:, c.index] <= last_day) & (last_day >= 0))
                if len(who) == 0:
                    continue
                target = who * 100_000 + (
                    np.maximum(onset[who, c.index], DAY_START - 40_000) - DAY_START + 50_000
                )
                pos = np.searchsorted(key, target)
                ok = pos < len(rows)
                pos, who = pos[ok], who[ok]
                ok = person[rows[pos]] == who
                self.emit("cond", enc=rows[pos[ok]], cond=c.index, start=onset[who[ok], c.index], stop=-1)

    def _allergies(self, person, day, site, start) -> None:
        cat, rng = self.catalogue, self.rng
        for s in (0, 1):
            rows = np.flatnonzero(site == s)
            if len(rows) == 0:
                continue
            first = rows[np.r_[True, person[rows][1:] != person[rows][:-1]]]
            for a in cat.allergies:
                chosen = first[self.prepared.allergy[person[first], a.index]]
                onset_day = self.persons.birth[person[chosen]] + rng.integers(365, 8 * 365, len(chosen))
                onset_day = np.minimum(onset_day, day[chosen])
                self.emit("allergy", enc=chosen, allergy=a.index, start=onset_day)
                if a.drug is not None:
                    self.emit(
                        "med",
                        enc=chosen,
                        drug=a.drug,
                        start=start[chosen],
                        stop=-1,
                        reason=-1,
                        dispenses=1,
                    )

    def _fills(self, claim, claim_record, person, day) -> None:
        """Pharmacy fills of chronic drugs while enrolled: every days-supply from treatment start
        (onset plus up to two weeks), with missed fills and a few days of jitter."""
        rng, cat, prep, ms = self.rng, self.catalogue, self.prepared, self.membership
        persons = self.persons
        payer = np.flatnonzero(ms.in_payer)
        hi = np.minimum(persons.death.astype(np.int64), DAY_END)
        for c in cat.of_kind("chronic"):
            if not c.drugs:
                continue
            who = payer[prep.onset[payer, c.index] <= hi[payer]]
            if len(who) == 0:
                continue
            treatments = []
            if c.regimen == "all":
                treatments = [(who, np.full(len(who), d)) for d in c.drugs]
            else:
                treatments = [(who, prep.drug_pick[who, c.index].astype(np.int64))]
            if c.add_on is not None:
                taking = who[prep.add_on[who, c.index]]
                treatments.append((taking, np.full(len(taking), c.add_on[0])))
            for owners, drug in treatments:
                supply = np.array([d.days for d in cat.drugs])[drug]
                begin = np.maximum(
                    prep.onset[owners, c.index].astype(np.int64) + rng.integers(0, 15, len(owners)),
                    DAY_CLAIMS,
                )
                count = np.clip((hi[owners] - begin) // supply + 1, 0, None)
                owner, k = expand(count)
                fill_day = begin[owner] + k * supply[owner] + rng.integers(-3, 4, len(owner))
                keep = (
                    (rng.random(len(owner)) > 0.12)
                    & (fill_day <= hi[owners][owner])
                    & (fill_day >= DAY_CLAIMS)
                )
                p, d, fd = owners[owner][keep], drug[owner][keep], fill_day[keep]
                ok, span = enrolled(ms, p, fd)
                record = (span >= ms.payer_dup_span[p]).astype(np.int8)
                self.emit("fill", person=p, drug=d, day=fd, record=record, ok=ok)

    def _timeline(
        self, person, start, stop, etype, kind, reason, site, record, claim, claim_record, day, age
    ):
        i64, i16, f64 = np.int64, np.int16, np.float64
        cond = self.collect("cond", {"enc": i64, "cond": i16, "start": i64, "stop": i64})
        med = self.collect(
            "med", {"enc": i64, "drug": i16, "start": i64, "stop": i64, "reason": i16, "dispenses": i64}
        )
        proc = self.collect("proc", {"enc": i64, "proc": i16, "reason": i16})
        pan = self.collect("panel", {"enc": i64, "panel": i16})
        imm = self.collect("imm", {"enc": i64, "vax": i16})
        obs_direct = self.collect("obs", {"enc": i64, "lab": i16, "value": f64, "text": i16})
        allergy = self.collect("allergy", {"enc": i64, "allergy": i16, "start": i64})
        device = self.collect("device", {"enc": i64, "device": i16})
        fill = self.collect("fill", {"person": i64, "drug": i16, "day": i64, "record": np.int8, "ok": bool})

        # sort each table by encounter (stable): rows of one encounter stay together, in order
        def by_enc(table):
            order = np.argsort(table["enc"], kind="stable")
            return {k: v[order] for k, v in table.items()}

        cond, med, proc, pan, imm, allergy, device = (
            by_enc(t) for t in (cond, med, proc, pan, imm, allergy, device)
        )
        obs = self._observations(pan, obs_direct, person, day, age, site)
        fill = {k: v[fill["ok"]] for k, v in fill.items()}
        order = np.lexsort((fill["drug"], fill["day"], fill["person"]))
        fill = {k: v[order] for k, v in fill.items()}
        return Timeline(
            e_person=person,
            e_start=start,
            e_stop=stop,
            e_type=etype,
            e_kind=kind,
            e_reason=reason,
            e_site=site,
            e_record=record,
            e_claim=claim,
            e_claim_record=claim_record,
            c_enc=cond["enc"],
            c_cond=cond["cond"],
            c_start=cond["start"],
            c_stop=cond["stop"],
            m_enc=med["enc"],
            m_drug=med["drug"],
            m_start=med["start"],
            m_stop=med["stop"],
            m_reason=med["reason"],
            m_dispenses=med["dispenses"],
            p_enc=proc["enc"],
            p_proc=proc["proc"],
            p_reason=proc["reason"],
            pn_enc=pan["enc"],
            pn_panel=pan["panel"],
            i_enc=imm["enc"],
            i_vax=imm["vax"],
            o_enc=obs["enc"],
            o_lab=obs["lab"],
            o_value=obs["value"],
            o_text=obs["text"],
            a_enc=allergy["enc"],
            a_allergy=allergy["allergy"],
            a_start=allergy["start"],
            d_enc=device["enc"],
            d_device=device["device"],
            f_person=fill["person"],
            f_drug=fill["drug"],
            f_day=fill["day"],
            f_record=fill["record"],
        )

    def _observations(self, pan, direct, person, day, age, site):
        """Lab panels drawn at EHR encounters expand into one result per analyte."""
        cat, rng, persons, prep = self.catalogue, self.rng, self.persons, self.prepared
        ehr_panels = site[pan["enc"]] >= 0
        enc_ids, panel_ids = pan["enc"][ehr_panels], pan["panel"][ehr_panels]
        sizes = np.array([len(p.labs) for p in cat.panels])[panel_ids]
        owner, k = expand(sizes)
        flat_labs = np.concatenate([np.array(p.labs, dtype=np.int64) for p in cat.panels])
        first_lab = np.cumsum([0] + [len(p.labs) for p in cat.panels])[:-1]
        obs_enc = enc_ids[owner]
        obs_lab = flat_labs[first_lab[panel_ids[owner]] + k]
        ehr_direct = site[direct["enc"]] >= 0
        enc_all = np.concatenate([obs_enc, direct["enc"][ehr_direct]])
        lab_all = np.concatenate([obs_lab, direct["lab"][ehr_direct].astype(np.int64)])
        text_all = np.concatenate(
            [np.full(len(obs_enc), -1, dtype=np.int64), direct["text"][ehr_direct].astype(np.int64)]
        )
        order = np.argsort(enc_all, kind="stable")
        enc_all, lab_all, text_all = enc_all[order], lab_all[order], text_all[order]
        value = np.zeros(len(enc_all))
        p = person[enc_all]
        d = day[enc_all]
        a = age[enc_all]
        height_adult = persons.height[p]
        growth = np.clip(0.30 + 0.70 * np.clip(a, 0, 18) / 18.0, 0.3, 1.0)
        height = height_adult * growth + rng.normal(0, 0.4, len(p))
        obese = prep.onset[p, cat.condition("obesity").index] <= d
        bmi_adult = np.where(obese, prep.obese_bmi[p], persons.bmi[p])
        bmi = np.where(a >= 18, bmi_adult, 15.5 + 0.2 * np.clip(a, 0, 18)) + rng.normal(0, 0.3, len(p))
        weight = bmi * (height / 100.0) ** 2
        special = {"body_height": height, "body_weight": weight, "bmi": weight / (height / 100.0) ** 2}
        for lab in cat.labs:
            rows = np.flatnonzero(lab_all == lab.index)
            if len(rows) == 0 or lab.text:
                continue
            if lab.key in special:
                value[rows] = special[lab.key][rows]
                continue
            mean = np.full(len(rows), lab.normal[0])
            sd = np.full(len(rows), lab.normal[1])
            for cond, c_mean, c_sd in lab.abnormal:
                on = prep.onset[p[rows], cond] <= d[rows]
                mean = np.where(on, c_mean, mean)
                sd = np.where(on, c_sd, sd)
            value[rows] = np.clip(rng.normal(mean, sd), lab.clip[0], lab.clip[1])
        return {
            "enc": enc_all,
            "lab": lab_all.astype(np.int16),
            "value": value,
            "text": text_all.astype(np.int16),
        }
