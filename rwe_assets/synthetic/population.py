"""True persons of one chunk: households, demographics, identity, germline genotypes.

Households are drawn first (singles, couples, families with children); members share the surname
(a wife who took her husband's name keeps her birth surname as `birth_surname`), the address and the
home phone; twins also share the birth date. Everything here is the truth; what each source records
about a person (with noise) is built by `identity.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue, Names
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.util import DAY_END, DAY_START, NEVER, YEAR, padded

NO_CHANGE = np.int32(-1)


@dataclass
class Persons:
    """Column arrays, one entry per true person of the chunk."""

    pid: np.ndarray  # int64 true_person_id (global, 1-based)
    household: np.ndarray  # int64 household id (pid of its first member)
    role: np.ndarray  # int8: 0 head, 1 partner, 2 child
    sex: np.ndarray  # int8: 0 male, 1 female
    birth: np.ndarray  # int32 day number
    twin_of: np.ndarray  # int64 pid of the twin, 0 if none
    first: np.ndarray  # U given name
    middle: np.ndarray  # U middle name ('' if none)
    last: np.ndarray  # U current surname
    birth_surname: np.ndarray  # U surname at birth
    surname_change_day: np.ndarray  # int32 day of a name change inside the window, -1 if none
    street: np.ndarray  # U street line of the current address
    place: np.ndarray  # int16 index into Names.places
    old_street: np.ndarray  # U street line before a move ('' if none)
    old_place: np.ndarray  # int16 (-1 if none)
    move_day: np.ndarray  # int32 day of a move inside the window, -1 if none
    ssn: np.ndarray  # U 9dd-dd-dddd (area 9xx: never issued, so visibly synthetic)
    phone: np.ndarray  # U 555-ddd-dddd
    drivers: np.ndarray  # U driver's licence ('' if none)
    passport: np.ndarray  # U passport ('' if none)
    race: np.ndarray  # int8 index into Names.races
    hispanic: np.ndarray  # bool
    marital: np.ndarray  # U M S D W or ''
    smoker: np.ndarray  # int8: 0 never, 1 former, 2 current (adults)
    bmi: np.ndarray  # float baseline BMI (adults)
    height: np.ndarray  # float adult height in cm
    carrier: np.ndarray  # int16 index of a carried founder variant, -1 if none
    genotype: np.ndarray  # int8 [n, variants, 2]: allele indices (0 ref, 1 first ALT, 2 second ALT)
    death: np.ndarray  # int32 day of death, NEVER if alive at the extract (set by the clinical model)

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, idx: np.ndarray) -> Persons:
        return Persons(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _ranked_choice(rng: np.random.Generator, size: int, n: int, offset: float = 6.0) -> np.ndarray:
    """Indices 0..size-1, earlier ones more often (weights 1/(rank+offset))."""
    weights = 1.0 / (np.arange(size) + offset)
    return rng.choice(size, size=n, p=weights / weights.sum())


def _ssn_params(seed: int) -> tuple[int, int]:
    """A bijection pid -> 8 digits (a * pid + b mod 10^8): unique SSNs for up to 10^8 persons."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 7_357])))
    a = int(rng.integers(10**6, 10**8))
    while a % 2 == 0 or a % 5 == 0:
        a += 1
    return a, int(rng.integers(0, 10**8))


def ssns(seed: int, pid: np.ndarray) -> np.ndarray:
    a, b = _ssn_params(seed)
    number = (pid.astype(np.int64) * a + b) % 10**8
    text = padded(number, 8)
    return np.char.add(
        np.char.add(
            np.char.add("9", np.char.add(_slice(text, 0, 2), "-")), np.char.add(_slice(text, 2, 4), "-")
        ),
        _slice(text, 4, 8),
    )


def _slice(text: np.ndarray, start: int, stop: int) -> np.ndarray:
    raw = text.astype("S").view(np.uint8).reshape(len(text), -1)[:, start:stop]
    return np.ascontiguousarray(raw).view(f"S{stop - start}").ravel().astype(f"U{stop - start}")


def _household_sizes(rng: np.random.Generator, n: int, family_rate: float) -> np.ndarray:
    sizes = []
    total = 0
    while total < n:
        draw = np.where(
            rng.random(n) < family_rate,
            rng.choice([2, 3, 4, 5], size=n, p=[0.40, 0.25, 0.22, 0.13]),
            1,
        )
        sizes.append(draw)
        total += int(draw.sum())
    sizes = np.concatenate(sizes)
    ends = np.cumsum(sizes)
    keep = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:keep].copy()
    sizes[-1] -= int(ends[keep - 1] - n)
    return sizes[sizes > 0]


def _addresses(rng: np.random.Generator, names: Names, n: int) -> tuple[np.ndarray, np.ndarray]:
    number = rng.integers(1, 9_999, size=n)
    street = np.array(names.streets)[_ranked_choice(rng, len(names.streets), n, 20.0)]
    suffix = np.array(names.street_suffixes)[rng.integers(0, len(names.street_suffixes), size=n)]
    line = np.char.add(np.char.add(np.char.add(number.astype(str), " "), np.char.add(street, " ")), suffix)
    unit = rng.random(n) < 0.18
    apt = np.char.add(" Apt ", rng.integers(1, 60, size=n).astype(str))
    line = np.where(unit, np.char.add(line, apt), line)
    place = _ranked_choice(rng, len(names.places), n, 8.0).astype(np.int16)
    return line, place


def make_persons(
    rng: np.random.Generator,
    first_pid: int,
    n: int,
    seed: int,
    config: NoiseConfig,
    names: Names,
    catalogue: Catalogue,
) -> Persons:
    sizes = _household_sizes(rng, n, config.family_rate)
    h = len(sizes)
    member = np.repeat(np.arange(h), sizes)
    position = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    pid = first_pid + np.arange(n, dtype=np.int64)
    household = pid[np.cumsum(sizes) - sizes][member]

    # roles: the first member heads the household; in households of 2+ the second is a partner
    # with probability 0.8, otherwise a child (single parents); the rest are children.
    has_partner = (sizes >= 2) & (rng.random(h) < 0.8)
    role = np.where(position == 0, 0, np.where((position == 1) & has_partner[member], 1, 2)).astype(np.int8)

    # ages at the extract date: singles span adult life; heads of families are 25-70
    single = sizes == 1
    head_age = np.where(
        single,
        np.where(rng.random(h) < 0.12, rng.uniform(0.0, 18.0, h), 18.0 + 82.0 * rng.beta(1.5, 1.9, h)),
        rng.uniform(25.0, 72.0, h),
    )
    age = head_age[member].copy()
    partners = role == 1
    age[partners] = np.clip(age[partners] + rng.normal(0.0, 3.5, partners.sum()), 18.0, 100.0)
    children = role == 2
    gap = rng.uniform(18.0, 42.0, children.sum())
    age[children] = np.clip(age[children] - gap, 0.0, None)
    too_old = children & (age > head_age[member] - 15.0)
    age[too_old] = rng.uniform(0.0, 15.0, too_old.sum())
    birth = (DAY_END + 1 - np.floor(age * YEAR) - rng.integers(0, 365, n)).astype(np.int32)

    sex = (rng.random(n) < 0.51).astype(np.int8)
    couple = has_partner[member]
    # couples are mostly of opposite sex: the partner takes the other sex of the head
    head_sex = sex[np.cumsum(sizes) - sizes][member]
    opposite = partners & (rng.random(n) < 0.95)
    sex[opposite] = 1 - head_sex[opposite]

    # twins: in a household with two or more children, the second child may share the first's birth
    twin_of = np.zeros(n, dtype=np.int64)
    child_rank = np.where(children, position - np.where(has_partner[member], 2, 1), -1)
    n_children = sizes - 1 - has_partner.astype(int)
    twin_house = (n_children >= 2) & (rng.random(h) < config.twin_rate)
    second = children & (child_rank == 1) & twin_house[member]
    first_twin = np.flatnonzero(second) - 1
    birth[second] = birth[first_twin]
    twin_of[second] = pid[first_twin]
    twin_of[first_twin] = pid[second]
    birth = np.minimum(birth, DAY_END - 1).astype(np.int32)

    # given names (twins get different ones: drawn independently, redrawn on a clash)
    male = np.array(names.male)
    female = np.array(names.female)
    first_m = male[_ranked_choice(rng, len(male), n)]
    first_f = female[_ranked_choice(rng, len(female), n)]
    first = np.where(sex == 1, first_f, first_m)
    clash = np.flatnonzero(second & (first == first[np.maximum(np.arange(n) - 1, 0)]))
    for i in clash:
        pool = female if sex[i] == 1 else male
        first[i] = pool[(np.flatnonzero(pool == first[i - 1])[0] + 1) % len(pool)]
    middle_m = male[_ranked_choice(rng, len(male), n)]
    middle_f = female[_ranked_choice(rng, len(female), n)]
    middle = np.where(rng.random(n) < 0.75, np.where(sex == 1, middle_f, middle_m), "")

    # surnames: one per household; a partner shares it with probability 0.75; children 0.92
    surnames = np.array(names.surnames)
    house_surname = surnames[_ranked_choice(rng, len(surnames), h, 12.0)]
    last = house_surname[member].copy()
    own = surnames[_ranked_choice(rng, len(surnames), n, 12.0)]
    keeps_own = (partners & (rng.random(n) < 0.25)) | (children & (rng.random(n) < 0.08))
    last = np.where(keeps_own, own, last)
    birth_surname = last.copy()
    # in a couple sharing the surname, the wife took it: a female partner who shares it, or a
    # female head whose male partner shares it
    partner_rows = np.flatnonzero(partners)
    partner_male_h = np.zeros(h, dtype=bool)
    partner_male_h[member[partner_rows]] = sex[partner_rows] == 0
    partner_shares_h = np.zeros(h, dtype=bool)
    partner_shares_h[member[partner_rows]] = ~keeps_own[partner_rows]
    took_name = (partners & (sex == 1) & ~keeps_own) | (
        (role == 0) & (sex == 1) & partner_male_h[member] & partner_shares_h[member]
    )
    birth_surname = np.where(took_name, own, birth_surname)
    adult_in_window = (DAY_START - birth) / YEAR >= 18.0
    changed = took_name & adult_in_window & (rng.random(n) < config.surname_change_rate)
    surname_change_day = np.where(changed, rng.integers(DAY_START + 180, DAY_END - 180, n), NO_CHANGE)

    # addresses: one per household; a household that moved has the old one too
    street_h, place_h = _addresses(rng, names, h)
    old_street_h, old_place_h = _addresses(rng, names, h)
    moved_h = rng.random(h) < config.address_change_rate
    move_day_h = np.where(moved_h, rng.integers(DAY_START + 180, DAY_END - 180, h), -1)
    street, place = street_h[member], place_h[member]
    old_street = np.where(moved_h[member], old_street_h[member], "")
    old_place = np.where(moved_h[member], old_place_h[member], -1).astype(np.int16)
    move_day = move_day_h[member].astype(np.int32)

    phone_h = np.char.add(
        np.char.add("555-", rng.integers(200, 999, h).astype(str)),
        np.char.add("-", padded(rng.integers(0, 10_000, h), 4)),
    )
    phone = phone_h[member]
    adult = age >= 16
    drivers = np.where(
        adult & (rng.random(n) < 0.85), np.char.add("S999", padded(rng.integers(0, 10**5, n), 5)), ""
    )
    passport = np.where(
        adult & (rng.random(n) < 0.45),
        np.char.add(np.char.add("X", padded(rng.integers(0, 10**8, n), 8)), "X"),
        "",
    )

    shares = np.array([r[4] for r in names.races])
    race_h = rng.choice(len(shares), size=h, p=shares / shares.sum())
    race = np.where(
        rng.random(n) < 0.9, race_h[member], rng.choice(len(shares), size=n, p=shares / shares.sum())
    )
    hispanic_h = rng.random(h) < names.hispanic_share
    hispanic = np.where(rng.random(n) < 0.95, hispanic_h[member], rng.random(n) < names.hispanic_share)

    marital = np.where(
        age < 18,
        "",
        np.where(
            couple & (role <= 1), "M", rng.choice(np.array(["S", "D", "W"]), size=n, p=[0.6, 0.25, 0.15])
        ),
    )
    smoker = np.where(age >= 16, rng.choice(3, size=n, p=[0.60, 0.25, 0.15]), 0).astype(np.int8)
    bmi = np.clip(rng.normal(25.5, 3.6, n), 17.0, 29.9)
    height = np.where(sex == 1, rng.normal(162.0, 6.5, n), rng.normal(176.0, 7.0, n))

    carrier, genotype = _genotypes(rng, catalogue, config, sizes, member, role)
    return Persons(
        pid=pid,
        household=household,
        role=role,
        sex=sex,
        birth=birth,
        twin_of=twin_of,
        first=first,
        middle=middle,
        last=last,
        birth_surname=birth_surname,
        surname_change_day=surname_change_day.astype(np.int32),
        street=street,
        place=place,
        old_street=old_street,
        old_place=old_place,
        move_day=move_day,
        ssn=ssns(seed, pid),
        phone=phone,
        drivers=drivers,
        passport=passport,
        race=race.astype(np.int8),
        hispanic=hispanic,
        marital=marital,
        smoker=smoker,
        bmi=bmi,
        height=height,
        carrier=carrier,
        genotype=genotype,
        death=np.full(n, NEVER, dtype=np.int32),
    )


def _genotypes(rng, catalogue: Catalogue, config: NoiseConfig, sizes, member, role):
    """Founder variants per family (head or partner carries, each child inherits with 1/2);
    population variants per person under Hardy-Weinberg."""
    n, h = len(member), len(sizes)
    variants = catalogue.variants
    genotype = np.zeros((n, len(variants), 2), dtype=np.int8)
    founders = [v for v in variants if v.carrier_share > 0]
    carrier = np.full(n, -1, dtype=np.int16)
    if founders:
        shares = np.array([v.carrier_share for v in founders])
        family_variant = np.array([v.index for v in founders])[
            rng.choice(len(founders), size=h, p=shares / shares.sum())
        ]
        carrying_house = rng.random(h) < config.pathogenic_variant_rate
        founder_is_head = rng.random(h) < 0.5
        founder_role = np.where(founder_is_head, 0, 1)
        has_partner = np.zeros(h, dtype=bool)
        np.logical_or.at(has_partner, member, role == 1)
        founder_role = np.where(has_partner, founder_role, 0)
        is_founder = carrying_house[member] & (role == founder_role[member])
        inherits = carrying_house[member] & (role == 2) & (rng.random(n) < 0.5)
        carries = is_founder | inherits
        carrier[carries] = family_variant[member][carries]
    for v in variants:
        if v.carrier_share > 0:
            genotype[carrier == v.index, v.index, 1] = 1
            continue
        p = np.array([a.af for a in v.alleles])
        for copy in (0, 1):
            draw = rng.random(n)
            allele = np.zeros(n, dtype=np.int8)
            edges = np.cumsum(p)
            for k in range(len(p) - 1, -1, -1):
                allele[draw < edges[k]] = k + 1
            genotype[:, v.index, copy] = allele
    genotype.sort(axis=2)
    return carrier, genotype
