"""The CDM build as a table of named steps, in the order the SQL needs (lib/cdm/build.py runs it).

A step is a short list of actions run on the build's one DuckDB connection: ``Sql`` runs a file of
lib/sql/cdm, ``Ids`` gives the rows of a query their persistent ids (lib/id_map.py), ``Call`` runs a
Python function of lib/cdm/build.py named by the table. Each step declares the tables it reads and
writes, named as the SQL names them:

``stg_<table>``       a staging table (asset staging/<table>; genomics: ``stg_genomics_<table>``)
``crosswalk_all``     the linkage crosswalk (linkage/person_crosswalk); ``linkage.<table>`` another one
``cdm.<table>``       a CDM or vocabulary table (cdm/<table>, vocab/<table>)
``results.<table>``   a results table (results/<table>)
anything else         an intermediate of the build (a temporary table or view), written by an earlier step

``check_steps`` holds the table to that (every read is an input or written earlier; every SQL file's
``cdm.``/``results.`` tables and the intermediates it names are declared), and ``asset_inputs`` derives
from it what feeds each CDM table, the lineage the Dagster assets show (defs/cdm/assets.py).

Fix-ups run after the table they change was written (drug exposures ended at death, persons without an
observation period removed): their reads become inputs of that table too, except where that would make
a circle (PERSON is read by everything before the removal): ``asset_inputs`` leaves those out and
returns their step names beside the inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rwe_assets.lib.cdm import sql
from rwe_assets.lib.cdm.tables import EVENT_TABLES

STAGING_VIEWS = ("person_source", "visit", "event", "note", "provider", "care_site", "enrollment", "cost")


def _keys(column: str, table: str) -> str:
    """The natural keys of a staged table whose records carry their own key: the id maps' query."""
    text = "SELECT source_system || '|' || {column} AS natural_key FROM {table}"
    return sql.fill_text(text, {"column": column, "table": table}, "lib/cdm/steps.py keys")


@dataclass(frozen=True)
class Sql:
    """Run lib/sql/cdm/<name>.sql."""

    name: str


@dataclass(frozen=True)
class Ids:
    """Assign persistent ids of `table` to the natural keys `query` returns; `values` binds the
    query's ``$name`` parameters (lib/sql_loader.py)."""

    table: str
    query: str
    values: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Call:
    """Run the build's function `name` (lib/cdm/build.py) with the build state."""

    name: str


@dataclass(frozen=True)
class Step:
    name: str
    actions: tuple[Sql | Ids | Call, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def _event_step(table: str) -> Step:
    reads = ("mapped_event", "unit_map") if table in ("measurement", "observation") else ("mapped_event",)
    return Step(
        table,
        (
            Ids(
                table,
                "SELECT natural_key FROM mapped_event WHERE cdm_table = $cdm_table",
                (("cdm_table", table),),
            ),
            Sql(table),
        ),
        reads,
        (f"cdm.{table}",),
    )


STEPS: tuple[Step, ...] = (
    Step(
        "setup",
        (Call("setup"),),  # the DDL, staging views, the crosswalk, lookup tables written by code
        (),
        ("unit_alias", "us_state", "source_priority", "source_kind"),
    ),
    Step(
        "location",
        (
            Sql("location_input"),
            Ids("location", "SELECT natural_key FROM location_input"),
            Sql("location"),
        ),
        ("stg_person_source", "stg_care_site", "us_state"),
        ("location_input", "cdm.location"),
    ),
    Step(
        "care_site",
        (Ids("care_site", _keys("care_site_key", "stg_care_site")), Sql("care_site")),
        ("stg_care_site", "us_state", "cdm.location"),
        ("cdm.care_site",),
    ),
    Step(
        "provider",
        (Ids("provider", _keys("provider_key", "stg_provider")), Sql("provider")),
        ("stg_provider", "cdm.care_site"),
        ("cdm.provider",),
    ),
    Step(
        "person",
        (Sql("person"),),
        ("stg_person_source", "stg_visit", "crosswalk_all", "source_priority", "source_kind", "us_state")
        + ("cdm.location",),
        ("results.person_exclusion", "crosswalk", "cdm.person"),
    ),
    Step(
        "visit_occurrence",
        (
            Sql("visit_input"),
            Call("visit_rollup"),
            Ids("visit_occurrence", "SELECT visit_group_key AS natural_key FROM rollup_visit"),
            Sql("visit_occurrence"),
        ),
        ("stg_visit", "crosswalk", "cdm.concept", "cdm.care_site", "cdm.provider"),
        ("visit_input", "rollup_visit", "rollup_visit_map", "cdm.visit_occurrence"),
    ),
    Step(
        "visit_detail",
        (Ids("visit_detail", "SELECT visit_key AS natural_key FROM rollup_visit_map"), Sql("visit_detail")),
        ("visit_input", "rollup_visit", "rollup_visit_map", "cdm.concept", "cdm.visit_occurrence"),
        ("visit_link", "cdm.visit_detail"),
    ),
    Step(
        "mapped_event",
        (Sql("mapped_event"), Sql("unit_map")),
        (
            "stg_event",
            "crosswalk",
            "unit_alias",
            "cdm.concept",
            "cdm.concept_relationship",
            "cdm.source_to_concept_map",
            "visit_link",
        ),
        ("code_map", "mapped_event", "unit_map"),
    ),
    *(_event_step(table) for table in EVENT_TABLES),
    Step(
        "genomics",
        (Call("genomics"),),
        ("stg_genomics_specimen", "stg_genomics_variant", "crosswalk", "cdm.concept"),
        ("cdm.specimen", "cdm.procedure_occurrence", "cdm.genomic_test", "cdm.target_gene")
        + ("cdm.variant_occurrence", "cdm.variant_annotation"),
    ),
    Step(
        "note",
        (Ids("note", _keys("record_key", "stg_note")), Sql("note")),
        ("stg_note", "crosswalk", "visit_link", "cdm.concept", "cdm.concept_relationship"),
        ("cdm.note", "note_language"),
    ),
    Step(
        "payer_plan_period",
        (
            Sql("payer_plan_period"),
            Ids("payer_plan_period", "SELECT natural_key FROM payer_plan_span"),
            Sql("payer_plan_period_insert"),
        ),
        ("stg_enrollment", "crosswalk", "cdm.person"),
        ("payer_plan_span", "cdm.payer_plan_period"),
    ),
    Step(
        "cost",
        (Ids("cost", _keys("record_key", "stg_cost")), Sql("cost")),
        (
            "stg_cost",
            "mapped_event",
            "visit_link",
            "cdm.payer_plan_period",
            *(f"cdm.{t}" for t in EVENT_TABLES),
        ),
        ("cost_input", "cdm.cost"),
    ),
    Step(
        "death",
        (Sql("death"),),
        ("stg_person_source", "source_kind", "crosswalk", "cdm.person"),
        ("cdm.death",),
    ),
    Step("drug_end_at_death", (Sql("drug_end_at_death"),), ("cdm.death",), ("cdm.drug_exposure",)),
    Step(
        "observation_period",
        (Call("observation_period"),),
        (
            "cdm.visit_occurrence",
            *(f"cdm.{t}" for t in EVENT_TABLES),
            "cdm.death",
            "cdm.payer_plan_period",
        ),
        ("cdm.observation_period",),
    ),
    Step(
        "exclude_unobserved_persons",
        (Call("exclude_unobserved_persons"),),
        ("cdm.observation_period",),
        ("results.person_exclusion", "cdm.death", "cdm.person"),
    ),
    Step(
        "condition_era",
        (Call("condition_era"),),
        ("cdm.condition_occurrence",),
        ("cdm.condition_era",),
    ),
    Step(
        "drug_era",
        (Call("drug_era"),),
        ("cdm.drug_exposure", "cdm.concept", "cdm.concept_ancestor"),
        ("cdm.drug_era",),
    ),
    Step(
        "dose_era",
        (Call("dose_era"),),
        ("cdm.drug_exposure", "cdm.drug_strength"),
        ("cdm.dose_era",),
    ),
    Step("cdm_source", (Call("cdm_source"),), (), ("results.build_inputs", "cdm.cdm_source")),
    Step(
        "vocabulary",
        (Call("vocabulary"),),
        ("cdm.vocabulary", *(f"cdm.{t}" for t in EVENT_TABLES)),
        ("results.vocabulary", "results.vocabulary_change"),
    ),
    Step(
        "unmapped_codes",
        (Call("unmapped_codes"),),
        ("mapped_event", "code_map", "unit_map", "note_language", "stg_note", "crosswalk"),
        (
            "results.unmapped_by_person",
            "results.mapping_by_person",
            "results.unmapped_codes",
            "results.mapping_summary",
        ),
    ),
    Step("linkage_metrics", (Call("linkage_metrics"),), ("linkage.metrics",), ("results.linkage_metrics",)),
    Step("staging_outcomes", (Call("staging_outcomes"),), (), ("results.staging_outcomes",)),
    Step(
        "reconciliation",
        (Call("reconciliation"),),
        ("stg_person_source", "stg_visit", "stg_note", "stg_event", "stg_cost", "crosswalk_all")
        + ("mapped_event", "cost_input", "results.person_exclusion", "stg_genomics_specimen")
        + ("stg_genomics_variant",)
        + tuple(
            f"cdm.{t}" for t in ("person", "visit_occurrence", "visit_detail", "note", "cost", *EVENT_TABLES)
        ),
        ("results.reconciliation_by_person", "results.reconciliation"),
    ),
)


# --- checking the table and deriving lineage from it ---------------------------------------------------


def writers(table: str, steps: tuple[Step, ...] = STEPS) -> list[Step]:
    return [s for s in steps if table in s.writes]


def fix_ups(steps: tuple[Step, ...] = STEPS) -> set[str]:
    """Steps that change a CDM or results table an earlier step wrote (drug exposures ended at death):
    the build runs them in a transaction, so a failure leaves that table as the earlier step left it."""
    found, written = set(), set()
    for step in steps:
        tables = {t for t in step.writes if "." in t}
        if tables & written:
            found.add(step.name)
        written |= tables
    return found


def check_steps(steps: tuple[Step, ...] = STEPS) -> list[str]:
    """What is wrong with the table: a step reading what no earlier step wrote, a name used twice, a
    SQL file naming a CDM, results or intermediate table its step does not declare."""
    problems, written = [], set()
    intermediates = {t for s in steps for t in s.writes if "." not in t}
    if len({s.name for s in steps}) != len(steps):
        problems.append("step names: expected each once")
    for step in steps:
        for table in step.reads:
            if table not in written and not _outside(table, steps):
                problems.append(f"step {step.name}: reads {table}, which no earlier step writes")
        declared = set(step.reads) | set(step.writes)
        for action in step.actions:
            if isinstance(action, Sql):
                for table in sorted(_named_tables(action.name, intermediates) - declared):
                    problems.append(f"step {step.name}: {action.name}.sql uses {table}, not declared")
        written |= set(step.writes)
    return problems


def _outside(table: str, steps: tuple[Step, ...]) -> bool:
    """Read from outside the build: staging, the crosswalk, a vocabulary (never written) table."""
    return (
        table.startswith(("stg_", "linkage."))
        or table == "crosswalk_all"
        or (table.startswith("cdm.") and not writers(table, steps))
    )


def _named_tables(name: str, intermediates: set[str]) -> set[str]:
    """cdm./results. tables and the build's intermediates a SQL file names (comments aside)."""
    text = re.sub(r"--[^\n]*", "", sql.sql_text(name))
    qualified = set(re.findall(r"\b((?:cdm|results)\.[a-z_]+)\b", text))
    bare = {t for t in re.findall(r"\b([a-z_]+)\b", text) if t in intermediates}
    return qualified | bare


def asset_inputs(table: str, steps: tuple[Step, ...] = STEPS) -> tuple[set[str], set[str]]:
    """(what feeds `table`, fix-up steps whose reads were left out to keep the graph acyclic): tables
    (``stg_*``, ``crosswalk_all``, ``cdm.*``, ``results.*``) the steps writing it read, intermediates
    replaced as ``_expand`` says."""
    feeds, skipped = set(), set()
    first = True
    for step in writers(table, steps):
        found = {t for read in step.reads for t in _expand(read, steps)} - {table}
        if not first and any(table in upstream(t, steps) for t in found):
            skipped.add(step.name)  # a fix-up reading what the table feeds: no circle in the graph
            continue
        feeds |= found
        first = False
    return feeds, skipped


def _expand(name: str, steps: tuple[Step, ...]) -> set[str]:
    """A table as itself; an intermediate as the tables its step fills (the intermediate is a by-product
    of them), or, for a step filling none, as what that step reads."""
    if "." in name or name.startswith("stg_") or name == "crosswalk_all":
        return {name}
    found = set()
    for step in writers(name, steps):
        filled = {t for t in step.writes if "." in t}
        found |= filled or {t for read in step.reads for t in _expand(read, steps)}
    return found


def upstream(table: str, steps: tuple[Step, ...] = STEPS, seen: set[str] | None = None) -> set[str]:
    """Every table `table` is derived from, through the first writer of each (fix-ups aside)."""
    seen = set() if seen is None else seen
    first = writers(table, steps)[:1]
    for step in first:
        for read in step.reads:
            for t in _expand(read, steps) - {table} - seen:
                seen.add(t)
                upstream(t, steps, seen)
    return seen
