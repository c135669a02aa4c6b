"""The YAML form of a cohort definition (docs/analytics.md, 'Cohorts'), translated into the Circe
expression the compiler (``cohort_compiler``) reads."""

from __future__ import annotations

from collections.abc import Mapping

from rwe_assets.errors import ConfigError
from rwe_assets.lib.analytics.cohort_compiler import UnsupportedCohortConstruct, only_keys

_YAML_DOMAINS = {
    "condition": "ConditionOccurrence",
    "drug": "DrugExposure",
    "procedure": "ProcedureOccurrence",
    "measurement": "Measurement",
    "observation": "Observation",
    "visit": "VisitOccurrence",
    "specimen": "Specimen",
}
ANY_EVENT = "any"  # in the YAML form, a domain's every event (Circe: a criterion without CodesetId)
_YAML_OCCURRENCE = {"exactly": 0, "at_most": 1, "at_least": 2}


def yaml_to_circe(doc: Mapping, where: str) -> dict:
    """Translate the YAML form (docs/analytics.md, 'Cohorts') into a Circe expression."""
    only_keys(
        doc,
        {
            "id",
            "name",
            "description",
            "concept_sets",
            "entry",
            "observation_window",
            "entry_limit",
            "inclusion",
            "end",
            "era_pad",
            "limit",
        },
        where,
    )
    set_ids = {name: n for n, name in enumerate(doc.get("concept_sets") or {})}
    if ANY_EVENT in set_ids:
        raise ConfigError(
            f"{where}: {ANY_EVENT!r} means every event of a domain; name the concept set otherwise"
        )
    concept_sets = [
        _yaml_concept_set(set_ids[name], name, spec) for name, spec in (doc.get("concept_sets") or {}).items()
    ]
    window = doc.get("observation_window") or {}
    expression: dict = {
        "ConceptSets": concept_sets,
        "PrimaryCriteria": {
            "CriteriaList": [
                _yaml_criterion(c, set_ids, f"{where}: entry[{n}]") for n, c in enumerate(doc["entry"])
            ],
            "ObservationWindow": {
                "PriorDays": window.get("prior_days", 0),
                "PostDays": window.get("post_days", 0),
            },
            "PrimaryCriteriaLimit": {"Type": str(doc.get("entry_limit", "all")).title()},
        },
        "QualifiedLimit": {"Type": "All"},
        "ExpressionLimit": {"Type": str(doc.get("limit", "all")).title()},
        "InclusionRules": [
            _yaml_rule(r, set_ids, f"{where}: inclusion[{n}]")
            for n, r in enumerate(doc.get("inclusion") or [])
        ],
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": int(doc.get("era_pad", 0))},
    }
    end = doc.get("end", "observation_end")
    if end != "observation_end":
        expression["EndStrategy"] = {
            "DateOffset": {
                "DateField": "EndDate" if end.get("from") == "end" else "StartDate",
                "Offset": int(end.get("offset_days", 0)),
            }
        }
    return expression


def _yaml_concept_set(set_id: int, name: str, spec: Mapping) -> dict:
    def item(concept_id: int, excluded: bool) -> dict:
        return {
            "concept": {"CONCEPT_ID": int(concept_id)},
            "isExcluded": excluded,
            "includeDescendants": bool(spec.get("descendants", True)),
            "includeMapped": bool(spec.get("mapped", False)),
        }

    items = [item(c, False) for c in spec.get("include", [])] + [
        item(c, True) for c in spec.get("exclude", [])
    ]
    return {"id": set_id, "name": name, "expression": {"items": items}}


def _yaml_criterion(spec: Mapping, set_ids: Mapping[str, int], where: str) -> dict:
    gender = {"Gender": [{"CONCEPT_ID": int(g)} for g in spec["gender"]]} if spec.get("gender") else {}
    if "variant" in spec:
        v = spec["variant"]
        keys = {
            "gene": "Gene",
            "hgvs_c": "HgvsC",
            "chromosome": "Chromosome",
            "position": "Position",
            "ref": "Ref",
            "alt": "Alt",
            "reference_genome": "ReferenceGenome",
            "pathogenicity": "Pathogenicity",
        }
        unknown = set(v) - set(keys)
        if unknown:
            raise UnsupportedCohortConstruct(where, f"variant field {sorted(unknown)[0]!r}")
        attrs = {keys[k]: val for k, val in v.items()} | {"First": bool(spec.get("first"))}
        return {"VariantOccurrence": attrs | gender}
    domain = [k for k in spec if k in _YAML_DOMAINS]
    if len(domain) != 1:
        raise UnsupportedCohortConstruct(where, "a criterion naming other than one domain")
    set_name = spec[domain[0]]
    if set_name != ANY_EVENT and set_name not in set_ids:
        raise ConfigError(f"{where}: concept set {set_name!r} is not defined under concept_sets")
    attrs: dict = {"First": bool(spec.get("first"))} | gender
    if set_name != ANY_EVENT:
        attrs["CodesetId"] = set_ids[set_name]
    if "value" in spec:
        attrs["ValueAsNumber"] = {
            "Op": spec["value"]["op"],
            "Value": spec["value"]["value"],
            "Extent": spec["value"].get("extent"),
        }
    if "unit" in spec:
        attrs["Unit"] = [{"CONCEPT_ID": int(u)} for u in spec["unit"]]
    if "value_text" in spec:
        attrs["ValueAsString"] = {"Op": spec["value_text"]["op"], "Text": spec["value_text"]["text"]}
    return {_YAML_DOMAINS[domain[0]]: attrs}


def _yaml_rule(rule: Mapping, set_ids: Mapping[str, int], where: str) -> dict:
    only_keys(rule, {"name", "type", "count", "criteria"}, where)
    items = []
    for n, c in enumerate(rule.get("criteria") or []):
        here = f"{where}.criteria[{n}]"
        only_keys(
            c,
            {
                *_YAML_DOMAINS,
                "variant",
                "first",
                "gender",
                "value",
                "value_text",
                "unit",
                "start_window",
                "occurrences",
                "ignore_observation_period",
            },
            here,
        )
        low, high = c.get("start_window", [None, None])
        occurrence = c.get("occurrences", {"type": "at_least", "count": 1})
        if occurrence.get("type") not in _YAML_OCCURRENCE:
            raise UnsupportedCohortConstruct(here, f"occurrences type {occurrence.get('type')!r}")
        items.append(
            {
                "Criteria": _yaml_criterion(c, set_ids, here),
                "StartWindow": {"Start": _yaml_bound(low, -1), "End": _yaml_bound(high, 1)},
                "Occurrence": {
                    "Type": _YAML_OCCURRENCE[occurrence["type"]],
                    "Count": int(occurrence["count"]),
                },
                "IgnoreObservationPeriod": bool(c.get("ignore_observation_period", False)),
            }
        )
    group = {"Type": str(rule.get("type", "all")).upper(), "CriteriaList": items}
    if "count" in rule:  # for at_least / at_most: how many of the criteria
        group["Count"] = int(rule["count"])
    return {"name": rule.get("name", ""), "expression": group}


def _yaml_bound(days: int | None, open_side: int) -> dict:
    """A signed day offset as Circe's Days/Coeff; None is the open side (all days before / after)."""
    if days is None:
        return {"Coeff": open_side}
    return {"Days": abs(int(days)), "Coeff": -1 if int(days) < 0 else 1}
