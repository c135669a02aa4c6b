"""The DQD check catalogue as this implementation reads it: which checks exist, how each check type is
run, what it counts, its SQL template, and which checks cannot fail on a CDM built from the spec.

The check definitions and thresholds come from OHDSI's catalogue (``dqd_spec.dqd_catalogue``); this
module adds what the catalogue does not say: ``CHECK_KINDS``, one row per check type, tells the runner
how to execute it (``RunAs``) and what its denominator counts. The runner reads that field; it never
looks at a template's text to decide.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

import duckdb

from rwe_assets.lib.cdm_spec import cdm_ddl, cdm_spec
from rwe_assets.lib.dqd_spec import DqdCatalogue, DqdCheck, applicable_checks, dqd_catalogue
from rwe_assets.lib.sql_loader import SqlFolder, fill_text, fragments

DEATH_GRACE_DAYS = 60
"""plausibleBeforeDeath tolerates records up to this many days after death (claims trail a death)."""
VISIT_WINDOW_DAYS = 7
"""withinVisitDates: a record may lie this many days before its visit's start or after its end."""
ADJACENT_DAYS = 1
"""measureObservationPeriodOverlap: periods this close (end + 1 day = next start) are back to back."""
GENDER_CONCEPTS = {"male": 8507, "female": 8532}
"""The catalogue's plausibleGender values and their CDM gender concepts."""
NO_UNIT = -1
"""plausibleUnitConceptIds lists -1 for "no unit" (unit_concept_id NULL)."""

QUALITY_SQL = SqlFolder(resources.files("rwe_assets.lib") / "sql" / "quality", "lib/sql/quality")
"""The check templates, one per check type: ``{name}`` SQL text the planner builds, ``$name`` values."""


class RunAs(StrEnum):
    """How the runner executes a check type's query."""

    SCAN = "scan"
    """The template is one aggregate pair over ``{table}``: merged with the other scan checks of the same
    table into one query, so the table is read once for all of them."""
    BATCH = "batch"
    """Light (a catalogue lookup, or a filter on one concept): run many at a time in one UNION ALL."""
    ALONE = "alone"
    """GROUP BY, anti-joins, joins of whole tables: one query each, which bounds memory."""


@dataclass(frozen=True)
class CheckKind:
    run_as: RunAs
    denominator: str  # what the denominator counts: in not-applicable reasons and the docs


_S, _B, _A = RunAs.SCAN, RunAs.BATCH, RunAs.ALONE
CHECK_KINDS: Mapping[str, CheckKind] = {
    "cdmTable": CheckKind(_B, "table to look for"),
    "cdmField": CheckKind(_B, "field to look for"),
    "isRequired": CheckKind(_S, "records in the table"),
    "cdmDatatype": CheckKind(_S, "records with a value in the field"),
    "isPrimaryKey": CheckKind(_A, "records in the table"),
    "isForeignKey": CheckKind(_A, "records with a value in the field"),
    "fkDomain": CheckKind(_A, "records with a value in the field"),
    "fkClass": CheckKind(_A, "records with a value in the field"),
    "isStandardValidConcept": CheckKind(_A, "records with a value in the field"),
    "measureValueCompleteness": CheckKind(_S, "records in the table"),
    "standardConceptRecordCompleteness": CheckKind(_S, "records in the table"),
    "sourceConceptRecordCompleteness": CheckKind(_S, "records in the table"),
    "sourceValueCompleteness": CheckKind(_S, "distinct source values in the field"),
    "plausibleValueLow": CheckKind(_S, "records with a value in the field"),
    "plausibleValueHigh": CheckKind(_S, "records with a value in the field"),
    "plausibleTemporalAfter": CheckKind(_A, "records with both dates"),
    "plausibleDuringLife": CheckKind(_A, "records of persons with a death record"),
    "plausibleBeforeDeath": CheckKind(_A, "records of persons with a death record"),
    "plausibleAfterBirth": CheckKind(_A, "records with a date of a known person"),
    "plausibleStartBeforeEnd": CheckKind(_S, "records with both a start and an end"),
    "withinVisitDates": CheckKind(_A, "records with a date linked to a visit occurrence"),
    "measurePersonCompleteness": CheckKind(_A, "persons"),
    "measureConditionEraCompleteness": CheckKind(_A, "persons with a mapped condition"),
    "measureObservationPeriodOverlap": CheckKind(_A, "persons with an observation period"),
    "plausibleGender": CheckKind(_B, "records of the concept (it does not occur)"),
    "plausibleGenderUseDescendants": CheckKind(_B, "records of the concept or its descendants (none occur)"),
    "plausibleUnitConceptIds": CheckKind(_B, "records of the concept with a numeric value (none occur)"),
}
"""Every check type this implementation runs: how (``RunAs``) and what its denominator counts."""
EXISTENCE_CHECKS = frozenset({"cdmTable", "cdmField"})
"""Checks that a thing exists: they always apply, and fail when it is missing."""


def run_as(check_name: str) -> RunAs:
    """How a check type runs (ALONE for a type the table does not list: the safe default)."""
    kind = CHECK_KINDS.get(check_name)
    return kind.run_as if kind else RunAs.ALONE


def denominator_of(check_name: str) -> str:
    kind = CHECK_KINDS.get(check_name)
    return kind.denominator if kind else "rows to check"


# --- templates ----------------------------------------------------------------------------------------

_SCAN = re.compile(
    r"SELECT\s+(?P<violated>.+?)\s+AS\s+num_violated_rows\s*,\s*(?P<denominator>.+?)\s+AS\s+"
    r"num_denominator_rows\s+FROM\s+\{table\}\s*;?",
    re.S | re.I,
)


def load_template(check_name: str) -> str:
    """The SQL template of a check type (``lib/sql/quality/<checkName>.sql``), unfilled."""
    return QUALITY_SQL.text(check_name)


def fill_template(check_name: str, identifiers: Mapping[str, str]) -> str:
    """The template of a check type with its ``{placeholders}`` filled by the planner's SQL text
    (names it already quoted and qualified, joins, subqueries): written as is."""
    return QUALITY_SQL.render(check_name, fill=fragments(identifiers))


def fill_expression(check_name: str, expression: str, identifiers: Mapping[str, str]) -> str:
    """One of ``scan_expressions``' expressions filled as ``fill_template`` fills the whole template."""
    return fill_text(expression, fragments(identifiers), f"lib/sql/quality/{check_name}.sql")


@cache
def scan_expressions(check_name: str) -> tuple[str, str]:
    """(violated, denominator) aggregate expressions of a SCAN check type's template, to merge them with
    others of the same table. A SCAN template must be ``SELECT <v> AS num_violated_rows, <d> AS
    num_denominator_rows FROM {table}``: any other shape raises, rather than silently running alone."""
    body = "\n".join(
        line for line in load_template(check_name).splitlines() if not line.strip().startswith("--")
    )
    match = _SCAN.fullmatch(body.strip())
    if run_as(check_name) is not RunAs.SCAN or match is None:
        raise ValueError(f"{check_name}: not a SCAN check type with a single aggregate over {{table}}")
    return match.group("violated"), match.group("denominator")


# --- which checks: optional ones, and those of the vocabulary alone -----------------------------------


def concept_value_checks(catalogue: DqdCatalogue | None = None) -> Iterator[DqdCheck]:
    """Optional extra checks: the concept-level CSV carries plausibleValueLow / plausibleValueHigh bounds
    per (concept, unit) on value_as_number, but the v5.4 check descriptions define those check types at
    FIELD level only, so ``applicable_checks`` does not yield them. Pass them in ``checks`` to run them:
    ``run_checks(con, checks=[*applicable_checks(), *concept_value_checks()])``."""
    catalogue = catalogue or dqd_catalogue()
    for name in ("plausibleValueLow", "plausibleValueHigh"):
        check_type = catalogue.check_type(name, "FIELD")
        for row in catalogue.rows_at("CONCEPT"):
            if name in row.values and row.unit_concept_id is not None:
                yield DqdCheck(
                    check_name=name,
                    level="CONCEPT",
                    table=row.table,
                    field=row.field,
                    concept_ids=row.concept_ids,
                    unit_concept_id=row.unit_concept_id,
                    threshold_pct=row.threshold_pct(name),
                    severity=check_type.severity,
                    params={name: row.values[name]},
                )


def vocabulary_checks(catalogue: DqdCatalogue | None = None) -> list[DqdCheck]:
    """The applicable checks that read the rows of vocabulary tables only (CONCEPT, CONCEPT_RELATIONSHIP,
    ...): their outcome is a property of the vocabulary, so the store runs them once per vocabulary
    version (lib/vocabulary.py) instead of every DQD run scanning tens of millions of vocabulary rows.
    cdmTable and cdmField are left out: they ask the database at hand (and are catalogue lookups)."""
    spec = cdm_spec()

    def vocabulary_only(check: DqdCheck) -> bool:
        named = [check.table, *(v for k, v in check.params.items() if k.endswith("TableName"))]
        rows = check.check_name not in EXISTENCE_CHECKS
        return rows and all(t in spec.table_names and spec.table(t).is_vocabulary for t in named)

    return [c for c in applicable_checks(catalogue=catalogue) if vocabulary_only(c)]


def check_id(check: DqdCheck) -> str:
    """checkName.table[.field][.conceptIds][.unit]: unique among the catalogue's checks."""
    parts = [check.check_name, check.table]
    if check.field:
        parts.append(check.field)
    if check.concept_ids:
        parts.append("-".join(map(str, check.concept_ids)))
    if check.unit_concept_id is not None:
        parts.append(str(check.unit_concept_id))
    return ".".join(parts)


# --- checks that cannot fail --------------------------------------------------------------------------

_INT32_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"})
"""DuckDB types whose every value is a whole number in the 32-bit range cdmDatatype checks for."""


@dataclass(frozen=True)
class _SpecGuarantees:
    """What the DDL generated from the spec enforces, as DuckDB reports it for an empty database built
    with that DDL: its tables, column types and single-column constraints ("table.field" keys)."""

    tables: frozenset[str]
    types: Mapping[str, str]
    not_null: frozenset[str]
    unique: frozenset[str]
    foreign_keys: frozenset[str]


@cache
def _spec_guarantees() -> _SpecGuarantees:
    with duckdb.connect() as con:
        for statement in cdm_ddl("cdm"):
            con.execute(statement)
        types = {
            f"{t}.{c}": data_type.upper()
            for t, c, data_type in con.execute(
                "SELECT lower(table_name), lower(column_name), data_type FROM information_schema.columns "
                "WHERE table_schema = 'cdm'"
            ).fetchall()
        }
        constraints: dict[str, set[str]] = defaultdict(set)
        for kind, table, columns in con.execute(
            "SELECT constraint_type, lower(table_name), constraint_column_names FROM duckdb_constraints() "
            "WHERE schema_name = 'cdm' AND len(constraint_column_names) = 1"
        ).fetchall():
            constraints[kind].add(f"{table}.{columns[0].lower()}")
    return _SpecGuarantees(
        tables=frozenset(key.split(".")[0] for key in types),
        types=types,
        not_null=frozenset(constraints["NOT NULL"]),
        unique=frozenset(constraints["PRIMARY KEY"] | constraints["UNIQUE"]),
        foreign_keys=frozenset(constraints["FOREIGN KEY"]),
    )


def cannot_fail_reason(check: DqdCheck) -> str | None:
    """Why ``check`` cannot fail on a CDM whose tables were created by ``cdm_ddl`` (the project's
    build), or None when it can. The rule: the DDL itself enforces what the check tests (DuckDB would
    refuse the violating row or could not hold the violating value), or no share of violated rows can
    exceed the threshold. Decided by building an empty database with that DDL and asking DuckDB which
    tables, types and constraints it has, so a change to the DDL changes the answer."""
    if check.threshold_pct >= 100:
        return "threshold 100 %: no share of violated rows exceeds it"
    spec = _spec_guarantees()
    key = f"{check.table}.{check.field}"
    rules = {
        "cdmTable": (check.table in spec.tables, "the DDL creates the table"),
        "cdmField": (key in spec.types, "the DDL creates the field"),
        "isRequired": (key in spec.not_null, "the DDL declares the field NOT NULL"),
        "cdmDatatype": (spec.types.get(key) in _INT32_TYPES, "the DDL types the field as a 32-bit integer"),
        "isPrimaryKey": (key in spec.unique, "the DDL declares the field PRIMARY KEY or UNIQUE"),
        "isForeignKey": (key in spec.foreign_keys, "the DDL declares the foreign key"),
        "plausibleStartBeforeEnd": (
            check.params.get("plausibleStartBeforeEndFieldName") == check.field,
            "the catalogue compares the field with itself",
        ),
    }
    holds, reason = rules.get(check.check_name, (False, ""))
    return reason if holds else None
