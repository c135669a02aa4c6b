"""Planning a DQD check: its check type's template, the identifiers to fill in (quoted, schema-qualified)
and the values to bind (DuckDB named parameters), or ``NotApplicable`` with the reason. One planner per
check type; the catalogue's SQL Server bounds are translated here (``translate_bound``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.dqd_spec import DqdCheck
from rwe_assets.lib.quality.catalogue import (
    ADJACENT_DAYS,
    DEATH_GRACE_DAYS,
    GENDER_CONCEPTS,
    VISIT_WINDOW_DAYS,
    RunAs,
    fill_template,
    run_as,
)
from rwe_assets.lib.quality.database import Database, NotApplicable
from rwe_assets.lib.sql_loader import PARAMETER
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

_NUMERIC_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
    | {"UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC"}
)


@dataclass(frozen=True)
class Plan:
    template: str  # check type = template file name
    identifiers: Mapping[str, str]
    params: Mapping[str, Any]
    alone: bool = False  # cannot share a query whatever its type (its table is a parameterised subquery)
    small: bool = False  # reads a few persons' rows (lib/quality/incremental.py): batched whatever its type

    @property
    def sql(self) -> str:
        return fill_template(self.template, self.identifiers)

    @property
    def run_as(self) -> RunAs:
        """How the runner executes it: its check type's ``RunAs`` (catalogue.CHECK_KINDS)."""
        if self.alone:
            return RunAs.ALONE
        kind = run_as(self.template)
        return RunAs.BATCH if self.small and kind is RunAs.ALONE else kind


Planner = Callable[[DqdCheck, Database], Plan]
_PLANNERS: dict[str, Planner] = {}


def _planner(*names: str) -> Callable[[Planner], Planner]:
    def register(function: Planner) -> Planner:
        for name in names:
            _PLANNERS[name] = function
        return function

    return register


def plan_check(check: DqdCheck, db: Database) -> Plan:
    planner = _PLANNERS.get(check.check_name)
    if planner is None:
        raise NotApplicable(f"check type {check.check_name} has no SQL template in this implementation")
    return planner(check, db)


def check_types_with_templates() -> tuple[str, ...]:
    """The check types this implementation can evaluate (one planner and one template each)."""
    return tuple(sorted(_PLANNERS))


def _field(check: DqdCheck) -> str:
    if not check.field:
        raise NotApplicable(f"{check.check_name} needs a field; the catalogue row has none")
    return check.field


def _param(check: DqdCheck, name: str) -> str:
    value = check.params.get(name)
    if value is None:
        raise NotApplicable(f"the catalogue gives no {name} for this check")
    return value


def _table_and_field(check: DqdCheck, db: Database, *more_columns: str) -> dict[str, str]:
    field = _field(check)
    db.require(check.table, field, *more_columns)
    db.require_rows(check.table)
    return {"table": db.table(check.table), "field": quote_identifier(field)}


@_planner("cdmTable")
def _plan_cdm_table(check: DqdCheck, db: Database) -> Plan:
    s = db.schema_of(check.table)
    return Plan("cdmTable", {}, {"catalog": s.catalog, "schema_name": s.name, "table_name": check.table})


@_planner("cdmField")
def _plan_cdm_field(check: DqdCheck, db: Database) -> Plan:
    s = db.schema_of(check.table)
    params = {"catalog": s.catalog, "schema_name": s.name, "table_name": check.table}
    return Plan("cdmField", {}, {**params, "column_name": _field(check)})


@_planner(
    "isRequired",
    "cdmDatatype",
    "isPrimaryKey",
    "measureValueCompleteness",
    "standardConceptRecordCompleteness",
    "sourceConceptRecordCompleteness",
)
def _plan_field(check: DqdCheck, db: Database) -> Plan:
    return Plan(check.check_name, _table_and_field(check, db), {})


@_planner("isForeignKey")
def _plan_foreign_key(check: DqdCheck, db: Database) -> Plan:
    fk_table, fk_field = _param(check, "fkTableName"), _param(check, "fkFieldName")
    identifiers = _table_and_field(check, db)
    db.require(fk_table, fk_field)
    return Plan(
        "isForeignKey",
        {**identifiers, "fk_table": db.table(fk_table), "fk_field": quote_identifier(fk_field)},
        {},
    )


def _concept_plan(check: DqdCheck, db: Database, concept_columns: Sequence[str], params: dict) -> Plan:
    identifiers = _table_and_field(check, db)
    db.require("concept", "concept_id", *concept_columns)
    return Plan(check.check_name, {**identifiers, "concept": db.table("concept")}, params)


@_planner("fkDomain")
def _plan_fk_domain(check: DqdCheck, db: Database) -> Plan:
    return _concept_plan(check, db, ["domain_id"], {"domain": _param(check, "fkDomain")})


@_planner("fkClass")
def _plan_fk_class(check: DqdCheck, db: Database) -> Plan:
    return _concept_plan(check, db, ["concept_class_id"], {"concept_class": _param(check, "fkClass")})


@_planner("isStandardValidConcept")
def _plan_standard_valid(check: DqdCheck, db: Database) -> Plan:
    return _concept_plan(check, db, ["standard_concept", "invalid_reason"], {})


@_planner("sourceValueCompleteness")
def _plan_source_value(check: DqdCheck, db: Database) -> Plan:
    concept_field = _param(check, "standardConceptFieldName")
    identifiers = _table_and_field(check, db, concept_field)
    return Plan(
        "sourceValueCompleteness", {**identifiers, "concept_field": quote_identifier(concept_field)}, {}
    )


@_planner("plausibleValueLow", "plausibleValueHigh")
def _plan_value_bound(check: DqdCheck, db: Database) -> Plan:
    name = check.check_name
    high = name == "plausibleValueHigh"
    raw = _param(check, name)
    key = "high" if high else "low"
    if check.level != "CONCEPT":
        identifiers = _table_and_field(check, db)
        bound = translate_bound(raw, db.type_of(check.table, _field(check)), high=high, today=db.today)
        return Plan(name, identifiers, {key: bound})
    # concept level (concept_value_checks): value_as_number of one concept in one unit
    if not check.concept_ids or check.unit_concept_id is None:
        raise NotApplicable(f"concept-level {name} needs a concept and a unit")
    field = _field(check)
    db.require(check.table, field, "unit_concept_id", "value_as_number")
    db.require_rows(check.table)
    subset = (
        f"(SELECT * FROM {db.table(check.table)} WHERE {quote_identifier(field)} = $concept_id "
        "AND unit_concept_id = $unit_concept_id)"
    )
    bound = translate_bound(raw, db.type_of(check.table, "value_as_number"), high=high, today=db.today)
    params = {key: bound, "concept_id": check.concept_ids[0], "unit_concept_id": check.unit_concept_id}
    return Plan(name, {"table": subset, "field": quote_identifier("value_as_number")}, params, alone=True)


def _compare_type(*types: str) -> str:
    """TIMESTAMP when every side is a datetime, else DATE: mixed date / datetime compare by day."""
    return "TIMESTAMP" if all(t.startswith("TIMESTAMP") for t in types) else "DATE"


@_planner("plausibleTemporalAfter")
def _plan_temporal_after(check: DqdCheck, db: Database) -> Plan:
    after_table = _param(check, "plausibleTemporalAfterTableName")
    after_field = _param(check, "plausibleTemporalAfterFieldName")
    identifiers = _table_and_field(check, db)
    db.require(after_table, after_field)
    if after_table == check.table:
        after, join = f"t.{quote_identifier(after_field)}", ""
    else:
        key = (
            next(iter(cdm_spec().table(after_table).primary_key), None)
            if after_table in cdm_spec().table_names
            else None
        )
        if key is None:
            raise NotApplicable(f"no key relates {check.table} to {after_table}")
        db.require(check.table, key)
        db.require(after_table, key)
        after = f"a.{quote_identifier(after_field)}"
        join = (
            f"LEFT JOIN {db.table(after_table)} AS a ON a.{quote_identifier(key)} = t.{quote_identifier(key)}"
        )
    compare = _compare_type(db.type_of(check.table, _field(check)), db.type_of(after_table, after_field))
    return Plan(
        "plausibleTemporalAfter",
        {**identifiers, "after": after, "after_join": join, "compare_type": compare},
        {},
    )


@_planner("plausibleDuringLife", "plausibleBeforeDeath")
def _plan_death(check: DqdCheck, db: Database) -> Plan:
    identifiers = _table_and_field(check, db, "person_id")
    db.require("death", "person_id", "death_date")
    params = {"grace_days": DEATH_GRACE_DAYS} if check.check_name == "plausibleBeforeDeath" else {}
    return Plan(check.check_name, {**identifiers, "death": db.table("death")}, params)


@_planner("plausibleAfterBirth")
def _plan_after_birth(check: DqdCheck, db: Database) -> Plan:
    identifiers = _table_and_field(check, db, "person_id")
    db.require("person", "person_id", "birth_datetime", "year_of_birth", "month_of_birth")
    return Plan("plausibleAfterBirth", {**identifiers, "person": db.table("person")}, {})


@_planner("plausibleStartBeforeEnd")
def _plan_start_before_end(check: DqdCheck, db: Database) -> Plan:
    end_field = _param(check, "plausibleStartBeforeEndFieldName")
    identifiers = _table_and_field(check, db, end_field)
    compare = _compare_type(db.type_of(check.table, _field(check)), db.type_of(check.table, end_field))
    return Plan(
        "plausibleStartBeforeEnd",
        {**identifiers, "end_field": quote_identifier(end_field), "compare_type": compare},
        {},
    )


@_planner("withinVisitDates")
def _plan_within_visit(check: DqdCheck, db: Database) -> Plan:
    identifiers = _table_and_field(check, db, "visit_occurrence_id")
    db.require("visit_occurrence", "visit_occurrence_id", "visit_start_date", "visit_end_date")
    return Plan(
        "withinVisitDates",
        {**identifiers, "visit_occurrence": db.table("visit_occurrence")},
        {"window_days": VISIT_WINDOW_DAYS},
    )


@_planner("measurePersonCompleteness")
def _plan_person_completeness(check: DqdCheck, db: Database) -> Plan:
    db.require(check.table, "person_id")
    db.require("person", "person_id")
    db.require_rows(check.table)
    return Plan(
        "measurePersonCompleteness", {"table": db.table(check.table), "person": db.table("person")}, {}
    )


@_planner("measureConditionEraCompleteness")
def _plan_condition_era_completeness(check: DqdCheck, db: Database) -> Plan:
    db.require(check.table, "person_id")
    db.require("condition_occurrence", "person_id", "condition_concept_id")
    db.require_rows("condition_occurrence")  # an empty era table is what this check is about
    identifiers = {"table": db.table(check.table), "condition_occurrence": db.table("condition_occurrence")}
    return Plan("measureConditionEraCompleteness", identifiers, {})


@_planner("measureObservationPeriodOverlap")
def _plan_period_overlap(check: DqdCheck, db: Database) -> Plan:
    db.require(check.table, "person_id", "observation_period_start_date", "observation_period_end_date")
    db.require_rows(check.table)
    return Plan(
        "measureObservationPeriodOverlap", {"table": db.table(check.table)}, {"adjacent_days": ADJACENT_DAYS}
    )


def _gender_concept(raw: str) -> int:
    concept = GENDER_CONCEPTS.get(raw.strip().lower())
    if concept is None:
        raise NotApplicable(f"unknown plausible gender {raw!r} (expected Male or Female)")
    return concept


@_planner("plausibleGender", "plausibleGenderUseDescendants")
def _plan_gender(check: DqdCheck, db: Database) -> Plan:
    if not check.concept_ids:
        raise NotApplicable(f"{check.check_name} needs a concept; the catalogue row has none")
    identifiers = _table_and_field(check, db, "person_id")
    db.require("person", "person_id", "gender_concept_id")
    identifiers["person"] = db.table("person")
    params: dict[str, Any] = {
        "gender_concept_id": _gender_concept(_param(check, check.check_name)),
        "known_genders": sorted(GENDER_CONCEPTS.values()),
    }
    if check.check_name == "plausibleGender":
        params["concept_id"] = check.concept_ids[0]
    else:
        db.require("concept_ancestor", "ancestor_concept_id", "descendant_concept_id")
        identifiers["concept_ancestor"] = db.table("concept_ancestor")
        params["concept_ids"] = list(check.concept_ids)
    return Plan(check.check_name, identifiers, params)


@_planner("plausibleUnitConceptIds")
def _plan_units(check: DqdCheck, db: Database) -> Plan:
    if not check.concept_ids:
        raise NotApplicable("plausibleUnitConceptIds needs a concept; the catalogue row has none")
    raw = _param(check, "plausibleUnitConceptIds")
    try:
        units = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise NotApplicable(f"cannot read the unit list {raw!r}") from None
    identifiers = _table_and_field(check, db, "unit_concept_id", "value_as_number")
    return Plan(
        "plausibleUnitConceptIds",
        identifiers,
        {"concept_id": check.concept_ids[0], "unit_concept_ids": units},
    )


# --- translating the catalogue's SQL Server bounds ---------------------------------------------------

_DATE_LITERAL = re.compile(r"'(\d{4})-?(\d{2})-?(\d{2})'")
_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")
_DATEADD = re.compile(r"DATEADD\(\s*(\w+)\s*,\s*([-+]?\d+)\s*,\s*GETDATE\(\)\s*\)", re.I)
_GETDATE = re.compile(r"GETDATE\(\)", re.I)
_YEAR = re.compile(r"YEAR\(\s*GETDATE\(\)\s*\)\s*(?:([-+])\s*(\d+))?", re.I)
_UNITS = {
    "dd": "day", "d": "day", "day": "day",
    "mm": "month", "m": "month", "month": "month",
    "yy": "year", "yyyy": "year", "year": "year",
}  # fmt: skip


def translate_bound(raw: str, column_type: str, *, high: bool, today: dt.date) -> Any:
    """The catalogue's bound (SQL Server: '19500101', DATEADD(dd,1,GETDATE()), YEAR(GETDATE())+1, 365)
    as a Python value to compare the column with. For a TIMESTAMP column a date bound becomes the
    start (low) or the end (high) of that day, so checks on dates and datetimes agree by day.
    Raises NotApplicable for a bound it cannot read or that does not fit the column's type."""
    text = raw.strip()
    value: Any
    if m := _DATE_LITERAL.fullmatch(text):
        value = _date(m, raw)
    elif m := _DATEADD.fullmatch(text):
        unit = _UNITS.get(m.group(1).lower())
        if unit is None:
            raise NotApplicable(f"cannot translate bound {raw!r}: unknown DATEADD unit")
        value = _add(today, unit, int(m.group(2)))
    elif _GETDATE.fullmatch(text):
        value = today
    elif m := _YEAR.fullmatch(text):
        value = today.year + (int(m.group(2)) * (-1 if m.group(1) == "-" else 1) if m.group(2) else 0)
    elif _NUMBER.fullmatch(text):
        value = float(text) if any(ch in text for ch in ".eE") else int(text)
    else:
        raise NotApplicable(f"cannot translate bound {raw!r}")

    temporal = column_type.startswith(("DATE", "TIMESTAMP"))
    numeric = column_type.split("(")[0].strip() in _NUMERIC_TYPES
    if not (temporal if isinstance(value, dt.date) else numeric):
        raise NotApplicable(f"bound {raw!r} does not fit a {column_type} field")
    if column_type.startswith("TIMESTAMP"):
        return dt.datetime.combine(value, dt.time.max if high else dt.time.min)
    return value


def _date(match: re.Match[str], raw: str) -> dt.date:
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise NotApplicable(f"cannot translate bound {raw!r}: not a date") from None


def _add(day: dt.date, unit: str, amount: int) -> dt.date:
    if unit == "day":
        return day + dt.timedelta(days=amount)
    months = day.month - 1 + amount * (12 if unit == "year" else 1)
    year, month = day.year + months // 12, months % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


# --- the standalone query of a plan ---------------------------------------------------------------


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return quote_literal(str(value))


def inline(sql: str, params: Mapping[str, Any]) -> str:
    """The query with its parameters written in as literals (for the sql column: runnable as is)."""
    return PARAMETER.sub(lambda m: literal(params[m.group(1)]) if m.group(1) in params else m.group(0), sql)
