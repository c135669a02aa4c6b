"""Which columns of a CDM table are ids, what they refer to, and the order in which tables are hashed
so that a referenced row's hash exists before the rows pointing to it (the method: ``compare``)."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rwe_assets.lib.cdm_spec import CdmSpec, CdmTable

# Id columns the spec does not declare as foreign keys: (table, column) -> table referred to.
UNDECLARED_REFERENCES = {
    ("note_nlp", "note_id"): "note",
    ("cost", "payer_plan_period_id"): "payer_plan_period",
    ("episode", "episode_parent_id"): "episode",
}
# domain_id -> the table holding that domain's rows (cost.cost_domain_id, fact_relationship's domains).
DOMAIN_TABLES = {
    "Visit": "visit_occurrence",
    "Condition": "condition_occurrence",
    "Drug": "drug_exposure",
    "Procedure": "procedure_occurrence",
    "Device": "device_exposure",
    "Measurement": "measurement",
    "Observation": "observation",
    "Specimen": "specimen",
    "Note": "note",
    "Episode": "episode",
}

TargetKind = Literal["domain_id", "domain_concept", "field_concept"]


@dataclass(frozen=True)
class PolymorphicReference:
    """An id column whose table is named by another column of the same row."""

    column: str
    discriminator: str
    kind: TargetKind  # the discriminator holds a domain_id, a domain's concept id or a CDM Field concept id


POLYMORPHIC_REFERENCES: dict[str, tuple[PolymorphicReference, ...]] = {
    "cost": (PolymorphicReference("cost_event_id", "cost_domain_id", "domain_id"),),
    "observation": (
        PolymorphicReference("observation_event_id", "obs_event_field_concept_id", "field_concept"),
    ),
    "measurement": (
        PolymorphicReference("measurement_event_id", "meas_event_field_concept_id", "field_concept"),
    ),
    "note": (PolymorphicReference("note_event_id", "note_event_field_concept_id", "field_concept"),),
    "episode_event": (PolymorphicReference("event_id", "episode_event_field_concept_id", "field_concept"),),
    "fact_relationship": (
        PolymorphicReference("fact_id_1", "domain_concept_id_1", "domain_concept"),
        PolymorphicReference("fact_id_2", "domain_concept_id_2", "domain_concept"),
    ),
}


@dataclass(frozen=True)
class TablePlan:
    """The role of each compared column of one table."""

    name: str
    in_spec: bool
    primary_key: str | None  # left out of the hash; the id other tables refer to
    values: tuple[str, ...]
    references: tuple[tuple[str, str], ...]  # (column, table referred to), resolved in the first pass
    self_references: tuple[str, ...]  # resolved in the second pass
    polymorphic: tuple[PolymorphicReference, ...]  # resolved in the second pass

    @property
    def has_second_pass(self) -> bool:
        return bool(self.self_references or self.polymorphic)


def plan_table(name: str, columns: Sequence[str], spec: CdmSpec) -> TablePlan:
    table = next((t for t in spec.tables if t.name == name), None)
    if table is None:
        return TablePlan(name, False, None, tuple(columns), (), (), ())
    surrogate_keyed = _surrogate_keyed_tables(spec)
    key = table.primary_key[0] if name in surrogate_keyed and table.primary_key[0] in columns else None
    polymorphic = tuple(
        p for p in POLYMORPHIC_REFERENCES.get(name, ()) if p.column in columns and p.discriminator in columns
    )
    skipped = {key, *(p.column for p in polymorphic)}
    values, references, self_references = [], [], []
    for column in (c for c in columns if c not in skipped):
        target = _referenced_table(table, column)
        if target not in surrogate_keyed:
            values.append(column)
        elif target == name:
            self_references.append(column)
        else:
            references.append((column, target))
    return TablePlan(name, True, key, tuple(values), tuple(references), tuple(self_references), polymorphic)


def _surrogate_keyed_tables(spec: CdmSpec) -> set[str]:
    """Tables whose single-column primary key is a surrogate id: every one but the vocabulary's."""
    return {t.name for t in spec.tables if not t.is_vocabulary and len(t.primary_key) == 1}


def _referenced_table(table: CdmTable, column: str) -> str | None:
    if (table.name, column) in UNDECLARED_REFERENCES:
        return UNDECLARED_REFERENCES[(table.name, column)]
    field = next((f for f in table.fields if f.name == column), None)
    return field.fk_table if field else None


def hash_order(chosen: Iterable[str], plans: Mapping[str, TablePlan]) -> list[str]:
    """The chosen tables and every table they refer to, referred-to tables first."""
    needed: set[str] = set()
    todo = [name for name in chosen if name in plans]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [target for _, target in plans[name].references if target in plans]
        if plans[name].polymorphic:  # may point into any table with an id
            todo += [other for other, plan in plans.items() if plan.primary_key]
    graph = {name: {t for _, t in plans[name].references if t in needed} for name in sorted(needed)}
    return list(graphlib.TopologicalSorter(graph).static_order())
