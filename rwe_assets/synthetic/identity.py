"""What each source records about a person: its own id and the person's identity, with noise.

A source record is (source, person, 0 = main record | 1 = duplicate record). Noise is drawn per
record, so the same person looks different in each source and in a duplicate record: a typo in a
name, a nickname, day and month of the birth date swapped, the birth surname of a woman who married
inside the window (if the record was registered before), the old address of a household that moved
(likewise), a missing SSN. Every flag is kept for the truth files.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from rwe_assets.synthetic.catalogue import Catalogue, Names
from rwe_assets.synthetic.clinical.timeline import Prepared
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.membership import MAX_SPANS, Membership, month_first_day
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.util import DAY_END, DAY_START, NEVER, YEAR, hex_ids, uuids

_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


@dataclass
class Records:
    source: str
    person: np.ndarray  # local person index
    dup: np.ndarray  # int8: 0 main record, 1 duplicate
    ids: pl.Series  # source person id
    registered: np.ndarray  # int32 day the source registered the record
    first: np.ndarray
    middle: np.ndarray
    last: np.ndarray
    birth: np.ndarray  # int32 day (after a possible day/month swap)
    ssn: np.ndarray  # '' when missing
    street: np.ndarray
    place: np.ndarray
    phone: np.ndarray
    typo: np.ndarray
    nickname: np.ndarray
    dm_swap: np.ndarray
    old_surname: np.ndarray
    old_address: np.ndarray
    ssn_missing: np.ndarray

    def __len__(self) -> int:
        return len(self.person)

    def index(self, n_persons: int) -> np.ndarray:
        """[person, dup] -> row of this table, -1 where the source holds no such record."""
        out = np.full((n_persons, 2), -1, dtype=np.int64)
        out[self.person, self.dup] = np.arange(len(self.person))
        return out

    def take(self, idx: np.ndarray) -> Records:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Records(
            **{
                k: (v if k == "source" else v.gather(idx) if k == "ids" else v[idx])
                for k, v in values.items()
            }
        )


def _typo(rng: np.random.Generator, word: str) -> str:
    if len(word) < 3:
        return word + word[-1].lower()
    i = int(rng.integers(1, len(word) - 1))
    op = int(rng.integers(0, 4))
    if op == 0:  # substitution
        letter = str(_LETTERS[rng.integers(0, 26)])
        return word[:i] + letter + word[i + 1 :] if letter != word[i].lower() else word[:i] + word[i + 1 :]
    if op == 1:  # deletion
        return word[:i] + word[i + 1 :]
    if op == 2:  # transposition
        return (
            word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
            if word[i] != word[i - 1]
            else word[:i] + word[i + 1 :]
        )
    return word[:i] + word[i] + word[i:]  # doubled letter


def _swap_day_month(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dates with day and month swapped, and where that gives another valid date."""
    dates = days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]")
    months = (dates.astype("datetime64[M]") - years.astype("datetime64[M]")).astype(np.int64) + 1
    dom = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    possible = (dom <= 12) & (dom != months)
    swapped_month = years.astype("datetime64[M]") + np.where(possible, dom - 1, 0)
    swapped = swapped_month.astype("datetime64[D]") + np.where(possible, months - 1, 0)
    return np.where(possible, swapped.astype(np.int64), days).astype(np.int32), possible


def make_records(
    rng: np.random.Generator,
    source: str,
    persons: Persons,
    person: np.ndarray,
    dup: np.ndarray,
    registered: np.ndarray,
    ids: pl.Series,
    names: Names,
    config: NoiseConfig,
    *,
    has_ssn: bool = True,
) -> Records:
    m = len(person)
    p = persons.take(person)
    first = p.first.astype(object)
    nickname = np.zeros(m, dtype=bool)
    candidates = np.flatnonzero(rng.random(m) < config.nickname_rate)
    for i in candidates:
        options = names.nicknames.get(str(first[i]))
        if options:
            first[i] = options[int(rng.integers(0, len(options)))]
            nickname[i] = True
    old_surname = (p.surname_change_day >= 0) & (registered < p.surname_change_day) & (rng.random(m) < 0.7)
    last = np.where(old_surname, p.birth_surname, p.last).astype(object)
    old_address = (p.move_day >= 0) & (registered < p.move_day) & (rng.random(m) < 0.7)
    street = np.where(old_address, p.old_street, p.street)
    place = np.where(old_address, p.old_place, p.place)
    typo = rng.random(m) < config.typo_rate
    in_first = rng.random(m) < 0.5
    for i in np.flatnonzero(typo):
        if in_first[i]:
            first[i] = _typo(rng, str(first[i]))
        else:
            last[i] = _typo(rng, str(last[i]))
    swapped, possible = _swap_day_month(p.birth)
    dm_swap = possible & (rng.random(m) < config.day_month_swap_rate)
    birth = np.where(dm_swap, swapped, p.birth).astype(np.int32)
    ssn_missing = (rng.random(m) < config.missing_ssn_rate) if has_ssn else np.ones(m, dtype=bool)
    ssn = np.where(ssn_missing, "", p.ssn)
    return Records(
        source=source,
        person=person,
        dup=dup.astype(np.int8),
        ids=ids,
        registered=registered.astype(np.int32),
        first=first.astype(str),
        middle=p.middle,
        last=last.astype(str),
        birth=birth,
        ssn=ssn,
        street=street,
        place=place.astype(np.int16),
        phone=p.phone,
        typo=typo,
        nickname=nickname,
        dm_swap=dm_swap,
        old_surname=old_surname,
        old_address=old_address,
        ssn_missing=ssn_missing if has_ssn else np.zeros(m, dtype=bool),
    )


def _with_duplicates(main: np.ndarray, dup_of: np.ndarray, main_day: np.ndarray, dup_day: np.ndarray):
    person = np.concatenate([main, dup_of])
    dup = np.concatenate([np.zeros(len(main), dtype=np.int8), np.ones(len(dup_of), dtype=np.int8)])
    registered = np.concatenate([main_day, dup_day])
    order = np.lexsort((dup, person))
    return person[order], dup[order], registered[order]


def ehr_records(rng, source, persons, in_site, start, dup_day, names, config) -> Records:
    main = np.flatnonzero(in_site)
    dup_of = main[dup_day[main] < NEVER]
    person, dup, registered = _with_duplicates(main, dup_of, start[main], dup_day[dup_of])
    return make_records(rng, source, persons, person, dup, registered, uuids(rng, len(person)), names, config)


def payer_records(rng, persons, membership: Membership, names, config) -> Records:
    main = np.flatnonzero(membership.in_payer)
    first_month = membership.span_start[main, 0].astype(np.int64)
    dup_of = main[membership.payer_dup_span[main] < MAX_SPANS]
    dup_month = membership.span_start[dup_of, membership.payer_dup_span[dup_of]].astype(np.int64)
    person, dup, registered = _with_duplicates(
        main, dup_of, month_first_day(first_month), month_first_day(dup_month)
    )
    return make_records(
        rng, "payer", persons, person, dup, registered, hex_ids(rng, len(person), 16), names, config
    )


# ------------------------------------------------------------------------------------------ lab


@dataclass
class LabTests:
    """One row per sample sent to the lab."""

    person: np.ndarray
    record: np.ndarray  # int8 0: the lab's main person id, 1: a second id (a retest filed apart)
    sample_id: pl.Series
    day: np.ndarray
    indicated: np.ndarray  # bool: the hereditary cancer panel (else the screening panel)
    ordering_site: np.ndarray  # int8 0 site A, 1 site B, -1 elsewhere


def select_lab_tests(
    rng: np.random.Generator,
    persons: Persons,
    membership: Membership,
    prepared: Prepared,
    catalogue: Catalogue,
    config: NoiseConfig,
) -> LabTests:
    """Breast cancer patients are tested soon after diagnosis (with lab_indicated_rate); relatives in
    the household of a tested carrier follow (cascade testing); anyone else with lab_test_rate."""
    n = len(persons)
    lo = np.maximum(persons.birth.astype(np.int64), DAY_START)
    hi = np.minimum(persons.death.astype(np.int64), DAY_END)
    alive = hi > lo + 30
    breast = catalogue.condition("breast_cancer").index
    onset = prepared.onset[:, breast].astype(np.int64)
    indicated = alive & (onset >= lo) & (onset <= hi - 7) & (rng.random(n) < config.lab_indicated_rate)
    day = np.where(indicated, np.minimum(onset + rng.integers(7, 31, n), hi), -1)
    # cascade: household members of an indicated carrier
    carrier_index = indicated & (persons.carrier >= 0)
    household_day = {}
    for i in np.flatnonzero(carrier_index):
        household_day.setdefault(int(persons.household[i]), int(day[i]))
    if household_day:
        house = np.array(sorted(household_day))
        first_day = np.array([household_day[h] for h in house])
        pos = np.searchsorted(house, persons.household)
        pos = np.minimum(pos, len(house) - 1)
        relative = (house[pos] == persons.household) & ~indicated & alive
        relative &= rng.random(n) < config.lab_indicated_rate * 0.6
        relative_day = first_day[pos] + rng.integers(30, 366, n)
        relative &= (relative_day <= hi) & ((relative_day - persons.birth) / YEAR >= 18)
        day = np.where(relative, relative_day, day)
        indicated = indicated | relative
    screened = ~indicated & alive & (rng.random(n) < config.lab_test_rate)
    screen_day = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    day = np.where(screened, screen_day, day)
    tested = np.flatnonzero(indicated | screened)
    # a retest filed under a second lab person id
    retest = tested[rng.random(len(tested)) < config.duplicate_rate]
    retest = retest[hi[retest] - day[retest] > 30]
    room = hi[retest] - day[retest] - 30
    retest_day = day[retest] + 30 + (rng.random(len(retest)) * room).astype(np.int64)
    person = np.concatenate([tested, retest])
    record = np.concatenate([np.zeros(len(tested), dtype=np.int8), np.ones(len(retest), dtype=np.int8)])
    test_day = np.concatenate([day[tested], retest_day])
    order = np.lexsort((record, person))
    person, record, test_day = person[order], record[order], test_day[order]
    in_a = (
        membership.in_a[person]
        & (membership.a_start[person] <= test_day)
        & (test_day <= membership.a_end[person])
    )
    in_b = (
        membership.in_b[person]
        & (membership.b_start[person] <= test_day)
        & (test_day <= membership.b_end[person])
    )
    site = np.where(in_a, 0, np.where(in_b, 1, -1)).astype(np.int8)
    return LabTests(
        person=person,
        record=record,
        sample_id=hex_ids(rng, len(person), 12, "LS"),
        day=test_day.astype(np.int32),
        indicated=np.concatenate([indicated[tested], indicated[retest]])[order],
        ordering_site=site,
    )


def lab_records(rng, persons, tests: LabTests, names, config) -> Records:
    keys = np.unique(tests.person.astype(np.int64) * 2 + tests.record)
    person, dup = keys // 2, (keys % 2).astype(np.int8)
    first_day = np.full(len(keys), np.iinfo(np.int32).max, dtype=np.int64)
    pos = np.searchsorted(keys, tests.person.astype(np.int64) * 2 + tests.record)
    np.minimum.at(first_day, pos, tests.day)
    ids = hex_ids(rng, len(keys), 12, "LP")
    return make_records(rng, "lab", persons, person, dup, first_day, ids, names, config, has_ssn=False)
