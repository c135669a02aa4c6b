"""prepare(): each person's natural history inside the data window, before any encounter.

Onset of every chronic condition and cancer (the catalogue's lifetime probabilities and onset ages;
BRCA carriers get breast cancer earlier and more often), yearly mortality (Gompertz, plus active
cancers), and hospital events (myocardial infarction for people with coronary heart disease,
sepsis for the old) that may end in death. An onset after death never happens.
"""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue
from rwe_assets.synthetic.clinical.timeline import Prepared
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.util import DAY_END, DAY_START, NEVER, YEAR, expand


def sex_value(pair: tuple[float, float], sex: np.ndarray) -> np.ndarray:
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
        p = sex_value(c.probability, persons.sex) * np.where(smoker, c.smoker_factor, 1.0)
        days = _onset_days(rng, persons.birth, c.onset_age, n)
        has = rng.random(n) < np.minimum(p, 0.95)
        if c.kind == "cancer" and c.carrier_onset_age is not None:
            carries = np.isin(
                persons.carrier, [v.index for v in catalogue.variants if v.condition == c.index]
            ) & (persons.carrier >= 0)
            p_carrier = sex_value(c.carrier_probability, persons.sex)
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
        rate = sex_value(c.rate, persons.sex) * config.density
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
