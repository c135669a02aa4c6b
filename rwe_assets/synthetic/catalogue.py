"""The clinical catalogue and the name lists as typed, indexed objects, and the lookups on them.

Everything the simulation draws from is numbered once (conditions, drugs, labs, procedures,
vaccines, allergies, variants), so event tables hold small integers and writers look strings up by
index. catalogue_reader.py reads catalogue/*.yaml into these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rwe_assets.errors import ConfigError

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogue"
EPOCH = date(1970, 1, 1)


def day_number(value: date | str) -> int:
    """Days since 1970-01-01."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return (value - EPOCH).days


@dataclass(frozen=True)
class EncounterType:
    index: int
    key: str
    snomed: str
    description: str
    encounter_class: str  # Synthea ENCOUNTERCLASS
    fhir_class: str  # v3 ActCode
    minutes: tuple[int, int]


@dataclass(frozen=True)
class Condition:
    index: int
    key: str
    kind: str  # chronic, cancer, acute, event, history, finding
    snomed: str
    description: str
    icd10cm: str | None
    icd10cm_male: str | None
    probability: tuple[float, float]  # (male, female): lifetime (chronic, cancer) or per visit (finding)
    onset_age: tuple[float, float, float, float]
    followups_per_year: float
    drugs: tuple[int, ...]
    regimen: str  # one: one of the drugs per person; all: every drug
    add_on: tuple[int, float] | None
    panels: tuple[str, ...]
    procedures: tuple[tuple[int, float], ...]
    smoker_factor: float
    excluded_by: int | None
    # cancer
    carrier_probability: tuple[float, float]
    carrier_onset_age: tuple[float, float, float, float] | None
    screening: int | None
    workup: tuple[int, ...]
    chemotherapy: tuple[int, ...]
    death_hazard: float
    # acute
    rate: tuple[float, float]
    child_factor: float
    days: tuple[int, int]
    encounter: str | None
    drug_probability: float
    course_days: int
    from_day: int | None
    # event
    requires: int | None
    min_age: float
    stay_days: tuple[int, int]
    drg: str | None
    drg_with_procedure: str | None
    history: int | None
    death_probability: float
    # finding
    ages: tuple[float, float]

    def icd10cm_for(self, female: bool) -> str | None:
        return self.icd10cm if female or not self.icd10cm_male else self.icd10cm_male


@dataclass(frozen=True)
class Drug:
    index: int
    key: str
    rxnorm: str
    description: str
    ndc: str
    hcpcs: str | None
    days: int
    quantity: int
    cost: float


@dataclass(frozen=True)
class Lab:
    index: int
    key: str
    loinc: str
    description: str
    units: str
    category: str
    decimals: int
    normal: tuple[float, float]
    clip: tuple[float, float]
    abnormal: tuple[tuple[int, float, float], ...]  # (condition index, mean, sd)
    text: bool


@dataclass(frozen=True)
class Panel:
    index: int
    key: str
    hcpcs: str | None
    labs: tuple[int, ...]


@dataclass(frozen=True)
class Procedure:
    index: int
    key: str
    snomed: str
    description: str
    hcpcs: str | None
    cost: float
    device: int | None


@dataclass(frozen=True)
class Device:
    index: int
    key: str
    snomed: str
    description: str


@dataclass(frozen=True)
class Vaccine:
    index: int
    key: str
    cvx: str
    description: str
    hcpcs: str
    schedule: str  # yearly, ages, once
    min_age: float
    ages: tuple[int, ...]
    until_day: int | None
    probability: float


@dataclass(frozen=True)
class Allergy:
    index: int
    key: str
    code: str
    system: str  # SNOMED-CT or RxNorm, as Synthea writes it
    description: str
    category: str
    probability: float
    reactions: tuple[tuple[str, str, str], ...]
    drug: int | None


@dataclass(frozen=True)
class VariantAllele:
    alt: str
    hgvsc: str
    hgvsp: str
    consequence: str
    clnsig: str
    af: float


@dataclass(frozen=True)
class Variant:
    index: int
    key: str
    chrom: str
    pos: int
    rsid: str
    ref: str
    gene: str
    alleles: tuple[VariantAllele, ...]  # the first is the main ALT; a second one makes the site multi-allelic
    carrier_share: float  # > 0: a family founder variant (share among carrier families)
    condition: int | None


@dataclass(frozen=True)
class Catalogue:
    encounter_types: tuple[EncounterType, ...]
    conditions: tuple[Condition, ...]
    drugs: tuple[Drug, ...]
    labs: tuple[Lab, ...]
    panels: tuple[Panel, ...]
    procedures: tuple[Procedure, ...]
    devices: tuple[Device, ...]
    vaccines: tuple[Vaccine, ...]
    allergies: tuple[Allergy, ...]
    variants: tuple[Variant, ...]
    visit_hcpcs: dict[str, str]
    wellness_hcpcs_by_age: tuple[tuple[float, str], ...]
    wellness_panels: dict[str, tuple[float, float]]
    codes: dict[str, dict[str, str]]  # extra ICD-10-CM / HCPCS codes by role: {code, description}
    genetic_tests: dict[str, dict[str, str]]
    _index: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def index(self, table: str, key: str) -> int:
        try:
            return self._index[(table, key)]
        except KeyError:
            raise ConfigError(f"synthetic catalogue: {table} has no entry {key!r}") from None

    def encounter_type(self, key: str) -> EncounterType:
        return self.encounter_types[self.index("encounter_types", key)]

    def condition(self, key: str) -> Condition:
        return self.conditions[self.index("conditions", key)]

    def panel(self, key: str) -> Panel:
        return self.panels[self.index("panels", key)]

    def lab(self, key: str) -> Lab:
        return self.labs[self.index("labs", key)]

    def procedure(self, key: str) -> Procedure:
        return self.procedures[self.index("procedures", key)]

    def drug(self, key: str) -> Drug:
        return self.drugs[self.index("drugs", key)]

    def of_kind(self, *kinds: str) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.kind in kinds)

    def coded(self) -> dict[str, set[str]]:
        """Every code the EHR and payer sources may write, by vocabulary (OMOP vocabulary ids)."""
        out: dict[str, set[str]] = {
            "SNOMED": set(),
            "RxNorm": set(),
            "LOINC": set(),
            "CVX": set(),
            "ICD10CM": set(),
            "HCPCS": set(),
            "NDC": set(),
        }
        out["SNOMED"] |= {e.snomed for e in self.encounter_types}
        for c in self.conditions:
            out["SNOMED"].add(c.snomed)
            out["ICD10CM"] |= {code for code in (c.icd10cm, c.icd10cm_male) if code}
        out["SNOMED"] |= {p.snomed for p in self.procedures} | {d.snomed for d in self.devices}
        out["HCPCS"] |= {p.hcpcs for p in self.procedures if p.hcpcs}
        out["HCPCS"] |= {p.hcpcs for p in self.panels if p.hcpcs} | {v.hcpcs for v in self.vaccines}
        out["HCPCS"] |= set(self.visit_hcpcs.values()) | {code for _, code in self.wellness_hcpcs_by_age}
        out["HCPCS"] |= {d.hcpcs for d in self.drugs if d.hcpcs}
        out["RxNorm"] |= {d.rxnorm for d in self.drugs}
        out["NDC"] |= {d.ndc for d in self.drugs}
        out["LOINC"] |= {lab.loinc for lab in self.labs}
        out["CVX"] |= {v.cvx for v in self.vaccines}
        for a in self.allergies:
            out["SNOMED" if a.system == "SNOMED-CT" else "RxNorm"].add(a.code)
            out["SNOMED"] |= {code for code, _, _ in a.reactions}
        for role in self.codes.values():
            out["HCPCS" if role["code"][:1].isdigit() else "ICD10CM"].add(role["code"])
        return out


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    state_name: str
    county: str
    zip: str
    lat: float
    lon: float
    ssa_state: str
    ssa_county: str


@dataclass(frozen=True)
class Names:
    male: tuple[str, ...]
    female: tuple[str, ...]
    nicknames: dict[str, tuple[str, ...]]
    surnames: tuple[str, ...]
    streets: tuple[str, ...]
    street_suffixes: tuple[str, ...]
    places: tuple[Place, ...]
    races: tuple[tuple[str, str, str, str, float], ...]
    hispanic_share: float
