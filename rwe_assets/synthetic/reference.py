"""Reference tables that do not depend on the persons: each EHR site's organizations (a hospital and
its clinics) and providers, and the payers an EHR encounter can be billed to. Drawn once per seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic.catalogue import Names
from rwe_assets.synthetic.util import padded, stream, uuids

SITE_NAMES = {
    0: ("LAKESIDE GENERAL HOSPITAL", "LAKESIDE FAMILY MEDICINE"),
    1: ("HARBORVIEW MEDICAL CENTER", "HARBORVIEW PRIMARY CARE"),
}
SPECIALTIES = ("GENERAL PRACTICE", "INTERNAL MEDICINE", "FAMILY PRACTICE", "PEDIATRICS")
HOSPITAL_SPECIALTIES = ("EMERGENCY MEDICINE", "CARDIOLOGY", "HEMATOLOGY/ONCOLOGY", "GENERAL SURGERY")
# (name, address, city, state, zip, phone); the first is the payer whose claims extract is the
# `payer` source, so EHR encounters it paid for carry its id.
PAYERS = (
    ("Commonwealth Health Plan", "100 Federal Street", "Boston", "MA", "02110", "1-800-555-0142"),
    ("Medicare", "7500 Security Blvd", "Baltimore", "MD", "21244", "1-800-633-4227"),
    ("Medicaid", "7500 Security Blvd", "Baltimore", "MD", "21244", "1-877-267-2323"),
    ("Blue Harbor PPO", "22 Harbor Way", "Providence", "RI", "02903", "1-800-555-0199"),
    ("NO_INSURANCE", "", "", "", "", ""),
)
OUR_PAYER, MEDICARE, MEDICAID, OTHER_PAYER, NO_INSURANCE = range(5)


@dataclass(frozen=True)
class Site:
    index: int
    org_ids: np.ndarray
    org_names: np.ndarray
    org_streets: np.ndarray
    org_places: np.ndarray
    org_phones: np.ndarray
    provider_ids: np.ndarray
    provider_org: np.ndarray
    provider_names: np.ndarray
    provider_gender: np.ndarray
    provider_specialty: np.ndarray
    provider_npi: np.ndarray

    @property
    def clinics(self) -> int:
        return len(self.org_ids) - 1  # organization 0 is the hospital


@dataclass(frozen=True)
class Reference:
    sites: tuple[Site, Site]
    payer_ids: np.ndarray


def _site(rng: np.random.Generator, index: int, names: Names) -> Site:
    hospital, clinic = SITE_NAMES[index]
    places = rng.choice(len(names.places), size=6, replace=False)
    org_names = np.array([hospital] + [f"{clinic} - {names.places[p].city.upper()}" for p in places[1:]])
    numbers = rng.integers(10, 2_000, 6).astype(str)
    streets = np.array(names.streets)[rng.integers(0, len(names.streets), 6)]
    org_streets = np.char.upper(np.char.add(np.char.add(numbers, " "), np.char.add(streets, " STREET")))
    org_phones = np.char.add("617555", padded(rng.integers(0, 10_000, 6), 4))
    per_org = np.array([8, 4, 4, 4, 4, 4])
    provider_org = np.repeat(np.arange(6), per_org)
    k = len(provider_org)
    gender = np.where(rng.random(k) < 0.5, "F", "M")
    first = np.where(
        gender == "F",
        np.array(names.female)[rng.integers(0, 120, k)],
        np.array(names.male)[rng.integers(0, 120, k)],
    )
    last = np.array(names.surnames)[rng.integers(0, len(names.surnames), k)]
    specialty = np.where(
        provider_org == 0,
        np.array(HOSPITAL_SPECIALTIES)[np.arange(k) % len(HOSPITAL_SPECIALTIES)],
        np.array(SPECIALTIES)[rng.integers(0, len(SPECIALTIES), k)],
    )
    npi = np.char.add("99999", padded(rng.integers(0, 100_000, k), 5))
    return Site(
        index=index,
        org_ids=uuids(rng, 6),
        org_names=org_names,
        org_streets=org_streets,
        org_places=places.astype(np.int16),
        org_phones=org_phones,
        provider_ids=uuids(rng, k),
        provider_org=provider_org,
        provider_names=np.char.add(np.char.add(first, " "), last),
        provider_gender=gender,
        provider_specialty=specialty,
        provider_npi=npi,
    )


def make_reference(seed: int, names: Names) -> Reference:
    rng = stream(seed, "reference")
    return Reference(sites=(_site(rng, 0, names), _site(rng, 1, names)), payer_ids=uuids(rng, len(PAYERS)))
