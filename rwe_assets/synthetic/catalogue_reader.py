"""Reads catalogue/clinical.yaml and catalogue/names.yaml into the typed objects of catalogue.py.

Every table is numbered first (a key listed twice is refused), then each entry is built with its
references to other tables (a drug of a condition, the device of a procedure...) resolved to
indices; a reference to a missing key is refused with the table and key named.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.synthetic.catalogue import (
    CATALOGUE_DIR,
    Allergy,
    Catalogue,
    Condition,
    Device,
    Drug,
    EncounterType,
    Lab,
    Names,
    Panel,
    Place,
    Procedure,
    Vaccine,
    Variant,
    VariantAllele,
    day_number,
)

Ref = Callable[[str, "str | None"], "int | None"]
EXTRA_CODE_ROLES = (
    "chemotherapy_icd10cm",
    "genetic_susceptibility_icd10cm",
    "genetic_screening_icd10cm",
    "genetic_test_hcpcs",
    "screening_mammogram_icd10cm",
)


def _by_sex(value: Any, default: float = 0.0) -> tuple[float, float]:
    """A number, or {M: x, F: y}, as (male, female)."""
    if value is None:
        return (default, default)
    if isinstance(value, dict):
        return (float(value.get("M", default)), float(value.get("F", default)))
    return (float(value), float(value))


def _unique(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(str(value), None)
    return tuple(seen)


def _age_spec(value: Any) -> tuple[float, float, float, float]:
    mean, sd, low, high = (float(v) for v in value)
    return (mean, sd, low, high)


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


def _keyed(mapping: dict) -> list[dict]:
    """Entries written as a mapping key -> fields, as a list of dicts with their key."""
    return [{"key": k, **v} for k, v in mapping.items()]


def _tables(raw: dict) -> dict[str, list[dict]]:
    """Every numbered table of clinical.yaml, as lists of entries in file order."""
    return {
        "encounter_types": _keyed(raw["encounter_types"]),
        "conditions": raw["conditions"],
        "drugs": raw["drugs"],
        "labs": raw["labs"],
        "panels": _keyed(raw["panels"]),
        "procedures": raw["procedures"],
        "devices": _keyed(raw["devices"]),
        "vaccines": raw["vaccines"],
        "allergies": raw["allergies"],
        "variants": raw["variants"],
    }


def _number(tables: dict[str, list[dict]]) -> dict[tuple[str, str], int]:
    index: dict[tuple[str, str], int] = {}
    for table, items in tables.items():
        for i, item in enumerate(items):
            key = (table, str(item["key"]))
            if key in index:
                raise ConfigError(f"synthetic catalogue: {table} lists {item['key']!r} twice")
            index[key] = i
    return index


def _resolver(index: dict[tuple[str, str], int]) -> Ref:
    def ref(table: str, key: str | None) -> int | None:
        if key is None:
            return None
        if (table, key) not in index:
            raise ConfigError(f"synthetic catalogue: {table} has no entry {key!r}")
        return index[(table, key)]

    return ref


def _condition(i: int, c: dict, ref: Ref) -> Condition:
    add_on = c.get("add_on")
    return Condition(
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


def _lab(i: int, lab: dict, ref: Ref) -> Lab:
    return Lab(
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
            (ref("conditions", k), float(v[0]), float(v[1])) for k, v in (lab.get("abnormal") or {}).items()
        ),
        text=bool(lab.get("text", False)),
    )


def _allele(v: dict, af: float) -> VariantAllele:
    return VariantAllele(v["alt"], v["hgvsc"], v["hgvsp"], v["consequence"], str(v["clnsig"]), af)


def _variant(i: int, v: dict, ref: Ref) -> Variant:
    alleles = [_allele(v, float(v.get("af", 0.0)))]
    if "second_alt" in v:
        alleles.append(_allele(v["second_alt"], float(v["second_alt"]["af"])))
    return Variant(
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


def _encounter_type(i: int, e: dict, ref: Ref) -> EncounterType:
    return EncounterType(
        i, e["key"], str(e["snomed"]), e["description"], e["class"], e["fhir_class"], tuple(e["minutes"])
    )


def _drug(i: int, d: dict, ref: Ref) -> Drug:
    return Drug(
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


def _panel(i: int, p: dict, ref: Ref) -> Panel:
    return Panel(i, p["key"], p.get("hcpcs"), tuple(ref("labs", lab) for lab in p["labs"]))


def _procedure(i: int, p: dict, ref: Ref) -> Procedure:
    return Procedure(
        i,
        p["key"],
        str(p["snomed"]),
        p["description"],
        p.get("hcpcs"),
        float(p.get("cost", 100.0)),
        ref("devices", p.get("device")),
    )


def _device(i: int, d: dict, ref: Ref) -> Device:
    return Device(i, d["key"], str(d["snomed"]), d["description"])


def _vaccine(i: int, v: dict, ref: Ref) -> Vaccine:
    return Vaccine(
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


def _allergy(i: int, a: dict, ref: Ref) -> Allergy:
    return Allergy(
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


# the entry builder of each numbered table (the Catalogue field of the same name)
BUILDERS = {
    "encounter_types": _encounter_type,
    "conditions": _condition,
    "drugs": _drug,
    "labs": _lab,
    "panels": _panel,
    "procedures": _procedure,
    "devices": _device,
    "vaccines": _vaccine,
    "allergies": _allergy,
    "variants": _variant,
}


def _extra_codes(raw: dict) -> dict[str, dict[str, str]]:
    """ICD-10-CM / HCPCS codes by role (chemotherapy, genetic tests, screening, wellness)."""
    codes = {
        role: {"code": str(raw[role]["code"]), "description": str(raw[role]["description"])}
        for role in EXTRA_CODE_ROLES
    }
    codes["wellness_adult_icd10cm"] = dict(raw["wellness_icd10cm"]["adult"])
    codes["wellness_child_icd10cm"] = dict(raw["wellness_icd10cm"]["child"])
    return codes


def _check_names(raw: dict, conditions: tuple[Condition, ...], ref: Ref) -> None:
    """Panels and encounter types named by key (not stored as indices) must exist too."""
    for c in conditions:
        for name in c.panels:
            ref("panels", name)
        if c.encounter is not None:
            ref("encounter_types", c.encounter)
    for name in raw["wellness_panels"]:
        ref("panels", name)


@cache
def load_catalogue(path: Path = CATALOGUE_DIR / "clinical.yaml") -> Catalogue:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    tables = _tables(raw)
    index = _number(tables)
    ref = _resolver(index)
    entries = {
        table: tuple(build(i, item, ref) for i, item in enumerate(tables[table]))
        for table, build in BUILDERS.items()
    }
    _check_names(raw, entries["conditions"], ref)
    visit = raw["visit_hcpcs"]
    return Catalogue(
        **entries,
        visit_hcpcs={k: str(v) for k, v in visit.items() if k != "wellness_by_age"},
        wellness_hcpcs_by_age=tuple((float(a), str(code)) for a, code in visit["wellness_by_age"]),
        wellness_panels={k: (float(v[0]), float(v[1])) for k, v in raw["wellness_panels"].items()},
        codes=_extra_codes(raw),
        genetic_tests={k: dict(v) for k, v in raw["genetic_tests"].items()},
        _index=index,
    )
