"""The clinical catalogue and the name lists (catalogue/*.yaml) as typed, indexed objects.

Everything the simulation draws from is numbered here once (conditions, drugs, labs, procedures,
vaccines, allergies, variants), so event tables hold small integers and writers look strings up by
index. Lookups that writers vectorize are kept as tuples of strings in catalogue order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rwe_assets.errors import ConfigError

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogue"
EPOCH = date(1970, 1, 1)


def day_number(value: date | str) -> int:
    """Days since 1970-01-01."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return (value - EPOCH).days


def _by_sex(value: Any, default: float = 0.0) -> tuple[float, float]:
    """A number, or {M: x, F: y}, as (male, female)."""
    if value is None:
        return (default, default)
    if isinstance(value, dict):
        return (float(value.get("M", default)), float(value.get("F", default)))
    return (float(value), float(value))


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


def _unique(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(str(value), None)
    return tuple(seen)


@cache
def load_names(path: Path = CATALOGUE_DIR / "names.yaml") -> Names:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    first = raw["first_names"]
    return Names(
        male=_unique(first["male"]),
        female=_unique(first["female"]),
        nicknames={str(k): tuple(str(v) for v in vs) for k, vs in first["nicknames"].items()},
        surnames=_unique(raw["surnames"]),
        streets=_unique(raw["streets"]),
        street_suffixes=_unique(raw["street_suffixes"]),
        places=tuple(
            Place(str(c), str(s), str(sn), str(co), str(z), float(la), float(lo), str(ss), str(sc))
            for c, s, sn, co, z, la, lo, ss, sc in raw["places"]
        ),
        races=tuple((str(a), str(b), str(c), str(d), float(e)) for a, b, c, d, e in raw["races"]),
        hispanic_share=float(raw["hispanic_share"]),
    )


def _age_spec(value: Any) -> tuple[float, float, float, float]:
    mean, sd, low, high = (float(v) for v in value)
    return (mean, sd, low, high)


@cache
def load_catalogue(path: Path = CATALOGUE_DIR / "clinical.yaml") -> Catalogue:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    index: dict[tuple[str, str], int] = {}

    def number(table: str, items: list[dict]) -> None:
        for i, item in enumerate(items):
            key = (table, str(item["key"]))
            if key in index:
                raise ConfigError(f"synthetic catalogue: {table} lists {item['key']!r} twice")
            index[key] = i

    enc_items = [{"key": k, **v} for k, v in raw["encounter_types"].items()]
    panel_items = [{"key": k, **v} for k, v in raw["panels"].items()]
    device_items = [{"key": k, **v} for k, v in raw["devices"].items()]
    for table, items in (
        ("encounter_types", enc_items),
        ("conditions", raw["conditions"]),
        ("drugs", raw["drugs"]),
        ("labs", raw["labs"]),
        ("panels", panel_items),
        ("procedures", raw["procedures"]),
        ("devices", device_items),
        ("vaccines", raw["vaccines"]),
        ("allergies", raw["allergies"]),
        ("variants", raw["variants"]),
    ):
        number(table, items)

    def ref(table: str, key: str | None) -> int | None:
        if key is None:
            return None
        if (table, key) not in index:
            raise ConfigError(f"synthetic catalogue: {table} has no entry {key!r}")
        return index[(table, key)]

    encounter_types = tuple(
        EncounterType(
            i, e["key"], str(e["snomed"]), e["description"], e["class"], e["fhir_class"], tuple(e["minutes"])
        )
        for i, e in enumerate(enc_items)
    )
    conditions = []
    for i, c in enumerate(raw["conditions"]):
        add_on = c.get("add_on")
        conditions.append(
            Condition(
                index=i,
                key=c["key"],
                kind=c["kind"],
                snomed=str(c["snomed"]),
                description=c["description"],
                icd10cm=c.get("icd10cm"),
                icd10cm_male=c.get("icd10cm_male"),
                probability=_by_sex(c.get("probability")),
                onset_age=_age_spec(c.get("onset_age", [0, 0, 0, 0])),
                followups_per_year=float(c.get("followups_per_year", 0.0)),
                drugs=tuple(ref("drugs", d) for d in c.get("drugs", [])),
                regimen=c.get("regimen", "one"),
                add_on=(ref("drugs", add_on["drug"]), float(add_on["probability"])) if add_on else None,
                panels=tuple(c.get("panels", [])),
                procedures=tuple(
                    (ref("procedures", p["key"]), float(p["probability"])) for p in c.get("procedures", [])
                ),
                smoker_factor=float(c.get("smoker_factor", 1.0)),
                excluded_by=ref("conditions", c.get("excluded_by")),
                carrier_probability=_by_sex(c.get("carrier_probability")),
                carrier_onset_age=_age_spec(c["carrier_onset_age"]) if "carrier_onset_age" in c else None,
                screening=ref("procedures", c.get("screening")),
                workup=tuple(ref("procedures", p) for p in c.get("workup", [])),
                chemotherapy=tuple(ref("drugs", d) for d in c.get("chemotherapy", [])),
                death_hazard=float(c.get("death_hazard", 0.0)),
                rate=_by_sex(c.get("rate")),
                child_factor=float(c.get("child_factor", 1.0)),
                days=tuple(c.get("days", [1, 1])),
                encounter=c.get("encounter"),
                drug_probability=float(c.get("drug_probability", 0.0)),
                course_days=int(c.get("course_days", 0)),
                from_day=day_number(str(c["from"])) if "from" in c else None,
                requires=ref("conditions", c.get("requires")),
                min_age=float(c.get("min_age", 0.0)),
                stay_days=tuple(c.get("stay_days", [1, 1])),
                drg=c.get("drg"),
                drg_with_procedure=c.get("drg_with_procedure"),
                history=ref("conditions", c.get("history")),
                death_probability=float(c.get("death_probability", 0.0)),
                ages=tuple(float(a) for a in c.get("ages", [0, 200])),
            )
        )
    drugs = tuple(
        Drug(
            i,
            d["key"],
            str(d["rxnorm"]),
            d["description"],
            str(d["ndc"]),
            d.get("hcpcs"),
            int(d["days"]),
            int(d["quantity"]),
            float(d["cost"]),
        )
        for i, d in enumerate(raw["drugs"])
    )
    labs = tuple(
        Lab(
            index=i,
            key=lab["key"],
            loinc=str(lab["loinc"]),
            description=lab["description"],
            units=str(lab.get("units", "")),
            category=lab["category"],
            decimals=int(lab.get("decimals", 0)),
            normal=tuple(lab.get("normal", [0.0, 0.0])),
            clip=tuple(lab.get("clip", [-1e9, 1e9])),
            abnormal=tuple(
                (ref("conditions", k), float(v[0]), float(v[1]))
                for k, v in (lab.get("abnormal") or {}).items()
            ),
            text=bool(lab.get("text", False)),
        )
        for i, lab in enumerate(raw["labs"])
    )
    panels = tuple(
        Panel(i, p["key"], p.get("hcpcs"), tuple(ref("labs", lab) for lab in p["labs"]))
        for i, p in enumerate(panel_items)
    )
    procedures = tuple(
        Procedure(
            i,
            p["key"],
            str(p["snomed"]),
            p["description"],
            p.get("hcpcs"),
            float(p.get("cost", 100.0)),
            ref("devices", p.get("device")),
        )
        for i, p in enumerate(raw["procedures"])
    )
    devices = tuple(
        Device(i, d["key"], str(d["snomed"]), d["description"]) for i, d in enumerate(device_items)
    )
    vaccines = tuple(
        Vaccine(
            i,
            v["key"],
            str(v["cvx"]),
            v["description"],
            str(v["hcpcs"]),
            v["schedule"],
            float(v.get("min_age", 0.0)),
            tuple(int(a) for a in v.get("ages", [])),
            day_number(str(v["until"])) if "until" in v else None,
            float(v["probability"]),
        )
        for i, v in enumerate(raw["vaccines"])
    )
    allergies = tuple(
        Allergy(
            i,
            a["key"],
            str(a["code"]),
            a["system"],
            a["description"],
            a["category"],
            float(a["probability"]),
            tuple((str(r[0]), str(r[1]), str(r[2])) for r in a.get("reactions", [])),
            ref("drugs", a.get("drug")),
        )
        for i, a in enumerate(raw["allergies"])
    )
    variants = []
    for i, v in enumerate(raw["variants"]):
        alleles = [
            VariantAllele(
                v["alt"], v["hgvsc"], v["hgvsp"], v["consequence"], str(v["clnsig"]), float(v.get("af", 0.0))
            )
        ]
        if "second_alt" in v:
            s = v["second_alt"]
            alleles.append(
                VariantAllele(
                    s["alt"], s["hgvsc"], s["hgvsp"], s["consequence"], str(s["clnsig"]), float(s["af"])
                )
            )
        variants.append(
            Variant(
                i,
                v["key"],
                v["chrom"],
                int(v["pos"]),
                v["id"],
                v["ref"],
                v["gene"],
                tuple(alleles),
                float(v.get("carrier", 0.0)),
                ref("conditions", v.get("condition")),
            )
        )
    codes = {
        role: {"code": str(raw[role]["code"]), "description": str(raw[role]["description"])}
        for role in (
            "chemotherapy_icd10cm",
            "genetic_susceptibility_icd10cm",
            "genetic_screening_icd10cm",
            "genetic_test_hcpcs",
            "screening_mammogram_icd10cm",
        )
    }
    codes["wellness_adult_icd10cm"] = dict(raw["wellness_icd10cm"]["adult"])
    codes["wellness_child_icd10cm"] = dict(raw["wellness_icd10cm"]["child"])
    visit = raw["visit_hcpcs"]
    for c in conditions:
        for name in c.panels:
            ref("panels", name)
        if c.encounter is not None:
            ref("encounter_types", c.encounter)
    for name in raw["wellness_panels"]:
        ref("panels", name)
    return Catalogue(
        encounter_types=encounter_types,
        conditions=tuple(conditions),
        drugs=drugs,
        labs=labs,
        panels=panels,
        procedures=procedures,
        devices=devices,
        vaccines=vaccines,
        allergies=allergies,
        variants=tuple(variants),
        visit_hcpcs={k: str(v) for k, v in visit.items() if k != "wellness_by_age"},
        wellness_hcpcs_by_age=tuple((float(a), str(code)) for a, code in visit["wellness_by_age"]),
        wellness_panels={k: (float(v[0]), float(v[1])) for k, v in raw["wellness_panels"].items()},
        codes=codes,
        genetic_tests={k: dict(v) for k, v in raw["genetic_tests"].items()},
        _index=index,
    )


def lookup(strings: tuple[str, ...] | list[str], idx: np.ndarray, missing: str = "") -> np.ndarray:
    """strings[idx] as a numpy unicode array; idx -1 gives `missing`."""
    table = np.array([*strings, missing])
    positions = np.where(idx < 0, len(strings), idx)
    return table[positions]
