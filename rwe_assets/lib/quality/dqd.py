"""OHDSI Data Quality Dashboard (DQD) v5.4 checks on the project's DuckDB OMOP CDM, generated from the
packaged DQD catalogue (``rwe_assets.lib.cdm_spec.dqd_catalogue``).

This is an independent implementation: DQD's own SQL is not shipped; every check type has one SQL
template of ours in ``rwe_assets/lib/sql/quality/<checkName>.sql``, written from the check descriptions.
A template returns one row, ``num_violated_rows`` and ``num_denominator_rows``; the code substitutes
identifiers (``{table}``, ``{field}``, ...: quoted, schema-qualified names) and passes values (bounds,
concept ids, domains) as DuckDB named parameters (``$name``). Nothing is written per table.

One check = one applicable (check type, table, field, concept) of the catalogue. Semantics:

- ``pct_violated_rows = num_violated_rows / num_denominator_rows`` (a fraction); a check fails when
  ``pct * 100 > threshold_pct`` (the catalogue's threshold is a percent; blank means 0).
- Not applicable (not run, or run and found nothing to evaluate), with a reason: a table or field the
  check needs is missing; the table checked is empty (table-, field- and concept-level checks alike;
  measureConditionEraCompleteness instead needs CONDITION_OCCURRENCE to have rows); the denominator is 0
  (a concept that does not occur, an all-NULL field, no deaths for plausibleBeforeDeath, ...). cdmTable
  and cdmField, which check that things exist, always apply.
- A query that fails is recorded as an error (``is_error``, ``error_message``), neither passed nor
  failed; it counts against the pass rate.
- Checks that cannot fail (``cannot_fail_reason``, see ``cannot_fail_reason()``): structural checks that
  the DDL generated from the same spec already enforces (the table or field exists, a NOT NULL column,
  an INTEGER column) and checks whose threshold is 100 %. They still run, and one that fails (a database
  not built from the spec) still fails, but the pass rate counts only applicable checks that can fail.

Speed: every check is one aggregate query, and queries are grouped. Templates shaped ``SELECT
<aggregate> AS num_violated_rows, <aggregate> AS num_denominator_rows FROM {table}`` (isRequired,
measureValueCompleteness, the record-completeness checks, plausible bounds, ...) are merged into one
query per table, so each table is scanned once for all of them; light checks (cdmTable, cdmField and the
concept-level ones) run 64 at a time in one UNION ALL; the rest (GROUP BY, anti-joins, joins to PERSON,
DEATH, VISIT_OCCURRENCE) run one query each, which bounds memory. Checks that read vocabulary tables
only are run once per vocabulary, when its store is written (``record_vocabulary_checks``), and reused. On a 10-million-row CDM with 2 threads
the suite takes under a minute (docs/data-quality.md).

Results go to ``<results_schema>.dq_check_results``: the table is created when missing, rows of the
same ``run_id`` are replaced, other runs are kept (one table holds the history, keyed by run_id).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast

import duckdb
import pyarrow as pa

from rwe_assets.lib.cdm_spec import (
    DqdCatalogue,
    DqdCheck,
    DqdCheckType,
    applicable_checks,
    cdm_ddl,
    cdm_spec,
    dqd_catalogue,
)
from rwe_assets.lib.quality.gate import STRUCTURAL_CHECKS
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

RESULTS_TABLE = "dq_check_results"
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

_TEMPLATE_DIR = resources.files("rwe_assets.lib") / "sql" / "quality"
_EXISTENCE_CHECKS = frozenset({"cdmTable", "cdmField"})
_LIGHT_CHECKS = frozenset(
    {"cdmTable", "cdmField", "plausibleGender", "plausibleGenderUseDescendants", "plausibleUnitConceptIds"}
)
"""Check types cheap enough to run a batch at a time in one UNION ALL: catalogue lookups and filters on
one concept. Heavier ones (GROUP BY, joins of whole tables) run one query each to bound memory."""
_UNION_SIZE = 64
_NUMERIC_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
    | {"UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC"}
)
_PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")
_SCAN = re.compile(
    r"SELECT\s+(?P<violated>.+?)\s+AS\s+num_violated_rows\s*,\s*(?P<denominator>.+?)\s+AS\s+"
    r"num_denominator_rows\s+FROM\s+\{table\}\s*;?",
    re.S | re.I,
)
_DENOMINATORS = {
    "cdmTable": "table to look for",
    "cdmField": "field to look for",
    "isRequired": "records in the table",
    "cdmDatatype": "records with a value in the field",
    "isPrimaryKey": "records in the table",
    "isForeignKey": "records with a value in the field",
    "fkDomain": "records with a value in the field",
    "fkClass": "records with a value in the field",
    "isStandardValidConcept": "records with a value in the field",
    "measureValueCompleteness": "records in the table",
    "standardConceptRecordCompleteness": "records in the table",
    "sourceConceptRecordCompleteness": "records in the table",
    "sourceValueCompleteness": "distinct source values in the field",
    "plausibleValueLow": "records with a value in the field",
    "plausibleValueHigh": "records with a value in the field",
    "plausibleTemporalAfter": "records with both dates",
    "plausibleDuringLife": "records of persons with a death record",
    "plausibleBeforeDeath": "records of persons with a death record",
    "plausibleAfterBirth": "records with a date of a known person",
    "plausibleStartBeforeEnd": "records with both a start and an end",
    "withinVisitDates": "records with a date linked to a visit occurrence",
    "measurePersonCompleteness": "persons",
    "measureConditionEraCompleteness": "persons with a mapped condition",
    "measureObservationPeriodOverlap": "persons with an observation period",
    "plausibleGender": "records of the concept (it does not occur)",
    "plausibleGenderUseDescendants": "records of the concept or its descendants (none occur)",
    "plausibleUnitConceptIds": "records of the concept with a numeric value (none occur)",
}
"""What each check type counts in its denominator; used in not-applicable reasons and the docs."""


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: one row of ``results.dq_check_results`` (fields = columns, same order)."""

    run_id: str
    run_at: dt.datetime  # when the run started, UTC (naive)
    check_id: str  # unique within a run: checkName.table[.field][.conceptIds][.unit]
    check_name: str
    check_level: str  # TABLE, FIELD or CONCEPT
    cdm_table: str
    cdm_field: str | None
    concept_id: int | None  # the (first) concept of a concept-level check
    concept_ids: str | None  # all of them, comma-separated (plausibleGenderUseDescendants has several)
    unit_concept_id: int | None
    status: str  # PASS, FAIL, NOT_APPLICABLE or ERROR
    num_violated_rows: int | None
    num_denominator_rows: int | None
    pct_violated_rows: float | None  # a fraction: violated / denominator
    threshold_pct: float  # a percent
    failed: bool
    not_applicable: bool
    not_applicable_reason: str | None
    is_error: bool
    error_message: str | None
    severity: str  # fatal, convention or characterization
    kahn_context: str
    kahn_category: str
    kahn_subcategory: str
    check_description: str
    execution_seconds: float
    cannot_fail_reason: str | None  # why the check cannot fail on a CDM built from the spec; None: it can
    sql: str | None  # the check's query, values inlined, runnable as is

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def can_fail(self) -> bool:
        return self.cannot_fail_reason is None


RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"),
    ("run_at", "TIMESTAMP"),
    ("check_id", "VARCHAR"),
    ("check_name", "VARCHAR"),
    ("check_level", "VARCHAR"),
    ("cdm_table", "VARCHAR"),
    ("cdm_field", "VARCHAR"),
    ("concept_id", "BIGINT"),
    ("concept_ids", "VARCHAR"),
    ("unit_concept_id", "BIGINT"),
    ("status", "VARCHAR"),
    ("num_violated_rows", "BIGINT"),
    ("num_denominator_rows", "BIGINT"),
    ("pct_violated_rows", "DOUBLE"),
    ("threshold_pct", "DOUBLE"),
    ("failed", "BOOLEAN"),
    ("not_applicable", "BOOLEAN"),
    ("not_applicable_reason", "VARCHAR"),
    ("is_error", "BOOLEAN"),
    ("error_message", "VARCHAR"),
    ("severity", "VARCHAR"),
    ("kahn_context", "VARCHAR"),
    ("kahn_category", "VARCHAR"),
    ("kahn_subcategory", "VARCHAR"),
    ("check_description", "VARCHAR"),
    ("execution_seconds", "DOUBLE"),
    ("cannot_fail_reason", "VARCHAR"),
    ("sql", "VARCHAR"),
)
"""(column, DuckDB type) of results.dq_check_results, in CheckResult's field order."""
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}


# --- public API -----------------------------------------------------------------------------------


def run_checks(
    con: duckdb.DuckDBPyConnection,
    schema: str = "cdm",
    results_schema: str | None = "results",
    run_id: str = "",
    checks: Iterable[DqdCheck] | None = None,
    *,
    vocab_schema: str | None = None,
    today: dt.date | None = None,
    catalogue: DqdCatalogue | None = None,
) -> list[CheckResult]:
    """Evaluate checks (default: every applicable check of the catalogue) against the CDM tables in
    ``schema`` and write them to ``<results_schema>.dq_check_results`` (``None``: do not write).

    ``schema``, ``vocab_schema`` (default: ``schema``; holds CONCEPT, CONCEPT_ANCESTOR, ...) and
    ``results_schema`` may be qualified with a database, e.g. ``db.cdm`` for a file attached read-only
    as ``db``. ``run_id`` defaults to a new UTC-timestamped id. ``today`` fixes GETDATE() in the
    catalogue's bounds (default: the current date). Results come back in catalogue order.
    """
    catalogue = catalogue or dqd_catalogue()
    chosen = list(applicable_checks(catalogue=catalogue) if checks is None else checks)
    run_id = run_id or new_run_id()
    run_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db = _Database.open(con, schema, vocab_schema or schema, today or dt.date.today())

    plans: list[_Plan | NotApplicable] = []
    for check in chosen:
        try:
            plans.append(_plan(check, db))
        except NotApplicable as na:
            plans.append(na)
    keys = [_inline(p.sql, p.params) if isinstance(p, _Plan) else None for p in plans]
    recorded = recorded_vocabulary_outcomes(con, db)  # checks of this vocabulary already run: not again
    outcomes = _execute_all(
        con, [NotApplicable("") if k in recorded else p for p, k in zip(plans, keys, strict=True)]
    )
    outcomes = [recorded.get(k, o) if k else o for k, o in zip(keys, outcomes, strict=True)]

    names = _concept_names(catalogue)
    results = [
        _result(check, plan, outcome, catalogue, names, run_id, run_at)
        for check, plan, outcome in zip(chosen, plans, outcomes, strict=True)
    ]
    if results_schema is not None:
        write_results(con, results, results_schema)
    return results


def summarize(results: Iterable[CheckResult]) -> dict[str, Any]:
    """Counts and pass rates, overall, by_table, by_check and by_category (Kahn category).

    Counts (total, passed, failed, not_applicable, errors, cannot_fail) cover every check, so a failed
    check is never hidden. ``pass_rate`` = passed / applicable over the checks that can fail (a
    fraction; None when none applies): a check that cannot fail on a CDM built from the spec would only
    inflate it. ``dqd_pass_rate`` = passed / (total - not_applicable) over all checks, the rate the
    OHDSI dashboard shows, for comparison. ``cannot_fail_checks`` lists those checks apart (the same
    counts, and how many per reason)."""
    results = list(results)
    groups = {
        "by_table": lambda r: r.cdm_table,
        "by_check": lambda r: r.check_name,
        "by_category": lambda r: r.kahn_category,
    }
    apart = [r for r in results if not r.can_fail]
    reasons: dict[str, int] = defaultdict(int)
    for r in apart:
        reasons[r.cannot_fail_reason or ""] += 1
    return {
        **_counts(results),
        "cannot_fail_checks": {**_counts(apart), "by_reason": dict(sorted(reasons.items()))},
        **{name: _grouped(results, key) for name, key in groups.items()},
    }


def _counts(results: Sequence[CheckResult]) -> dict[str, Any]:
    total = len(results)
    passed = sum(r.status == "PASS" for r in results)
    na = sum(r.not_applicable for r in results)
    scored = [r for r in results if r.can_fail and not r.not_applicable]
    return {
        "total": total,
        "passed": passed,
        "failed": sum(r.failed for r in results),
        "not_applicable": na,
        "errors": sum(r.is_error for r in results),
        "cannot_fail": sum(not r.can_fail for r in results),
        "pass_rate": sum(r.status == "PASS" for r in scored) / len(scored) if scored else None,
        "dqd_pass_rate": passed / (total - na) if total > na else None,
    }


def _grouped(results: Sequence[CheckResult], key: Callable[[CheckResult], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        groups[key(r)].append(r)
    return {name: _counts(rs) for name, rs in sorted(groups.items())}


def write_results(
    con: duckdb.DuckDBPyConnection, results: Sequence[CheckResult], results_schema: str = "results"
) -> str:
    """Create ``<results_schema>.dq_check_results`` when missing and replace the rows of the results'
    run ids with ``results``. Returns the table's qualified name."""
    schema_sql = _qualified(results_schema)
    target = f"{schema_sql}.{quote_identifier(RESULTS_TABLE)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_sql}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {target} ("
        + ", ".join(f"{quote_identifier(name)} {duck}" for name, duck in RESULT_COLUMNS)
        + ")"
    )
    for name, duck in RESULT_COLUMNS:  # a results table written by an older version gains new columns
        con.execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote_identifier(name)} {duck}")
    batch = pa.Table.from_pylist(
        [dataclasses.asdict(r) for r in results],
        schema=pa.schema([(name, _ARROW_TYPES[duck]) for name, duck in RESULT_COLUMNS]),
    )
    view = f"dqd_results_{uuid.uuid4().hex}"
    con.register(view, batch)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for run in sorted({r.run_id for r in results}):
                con.execute(f"DELETE FROM {target} WHERE run_id = $run_id", {"run_id": run})
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {quote_identifier(view)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(view)
    return target


def new_run_id() -> str:
    """A fresh run id: UTC time to the second plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def load_template(check_name: str) -> str:
    """The SQL template of a check type (``lib/sql/quality/<checkName>.sql``)."""
    return _template(check_name)


def check_types_with_templates() -> tuple[str, ...]:
    """The check types this module can evaluate (one template each)."""
    return tuple(sorted(_PLANNERS))


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


# --- checks of the vocabulary alone: run once per vocabulary --------------------------------------

VOCABULARY_RESULTS = "dq_vocabulary_results"
"""Table (schema ``results`` of the vocabulary's database) of the outcomes of ``vocabulary_checks``."""


def vocabulary_checks(catalogue: DqdCatalogue | None = None) -> list[DqdCheck]:
    """The applicable checks that read the rows of vocabulary tables only (CONCEPT, CONCEPT_RELATIONSHIP,
    ...): their outcome is a property of the vocabulary, so the store runs them once per vocabulary
    version (lib/vocabulary.py) instead of every DQD run scanning tens of millions of vocabulary rows.
    cdmTable and cdmField are left out: they ask the database at hand (and are catalogue lookups)."""
    spec = cdm_spec()

    def vocabulary_only(check: DqdCheck) -> bool:
        named = [check.table, *(v for k, v in check.params.items() if k.endswith("TableName"))]
        rows = check.check_name not in _EXISTENCE_CHECKS
        return rows and all(t in spec.table_names and spec.table(t).is_vocabulary for t in named)

    return [c for c in applicable_checks(catalogue=catalogue) if vocabulary_only(c)]


def record_vocabulary_checks(con: duckdb.DuckDBPyConnection, schema: str = "cdm") -> int:
    """Run ``vocabulary_checks`` on the vocabulary in ``schema`` and keep their outcomes, keyed by the
    query (values inlined) and valid for the vocabulary row counts seen, in ``results.<VOCABULARY_RESULTS>``
    of the connection's database. Returns the checks recorded (errors are not: they run again)."""
    results = run_checks(con, schema, None, run_id="vocabulary", checks=vocabulary_checks())
    db = _Database.open(con, schema, schema, dt.date.today())
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    con.execute(
        f"CREATE OR REPLACE TABLE results.{VOCABULARY_RESULTS} (vocabulary_rows VARCHAR, sql VARCHAR, "
        "num_violated_rows BIGINT, num_denominator_rows BIGINT)"
    )
    rows = [
        (_vocabulary_rows(db), r.sql, r.num_violated_rows, r.num_denominator_rows)
        for r in results
        if r.sql is not None and not r.is_error
    ]
    if rows:
        con.executemany(f"INSERT INTO results.{VOCABULARY_RESULTS} VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def recorded_vocabulary_outcomes(con: duckdb.DuckDBPyConnection, db: _Database) -> dict[str, _Outcome]:
    """Outcomes recorded by ``record_vocabulary_checks`` in the vocabulary's database, by query, when its
    vocabulary tables still have the row counts they had then (else none: everything runs). A reused
    outcome reports 0 execution seconds: nothing ran for it."""
    found = con.execute(
        "SELECT database_name FROM duckdb_tables() WHERE lower(database_name) = $c "
        "AND schema_name = 'results' AND table_name = $t",
        {"c": db.vocab.catalog, "t": VOCABULARY_RESULTS},
    ).fetchone()
    if found is None:
        return {}
    table = f"{quote_identifier(found[0])}.results.{VOCABULARY_RESULTS}"
    rows = con.execute(
        f"SELECT sql, num_violated_rows, num_denominator_rows FROM {table} WHERE vocabulary_rows = $rows",
        {"rows": _vocabulary_rows(db)},
    ).fetchall()
    return {sql: _Outcome(violated, denominator) for sql, violated, denominator in rows}


def _vocabulary_rows(db: _Database) -> str:
    """Row counts of the vocabulary tables present, as JSON: what a recorded outcome is valid for."""
    present = db.tables[(db.vocab.catalog, db.vocab.name)]
    counts = {
        t.name: _scalar(db.con, f"SELECT count(*) FROM {db.table(t.name)}")
        for t in cdm_spec().tables
        if t.is_vocabulary and t.name in present
    }
    return json.dumps(counts, sort_keys=True)


# --- checks that cannot fail ------------------------------------------------------------------------

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


# --- the database being checked -------------------------------------------------------------------


class NotApplicable(Exception):
    """Raised while planning a check that cannot apply; the message is the reason."""


@dataclass(frozen=True)
class _Schema:
    catalog: str  # lower case
    name: str  # lower case
    sql: str  # quoted and qualified: "db"."cdm"


@dataclass
class _Database:
    con: duckdb.DuckDBPyConnection
    cdm: _Schema
    vocab: _Schema
    today: dt.date
    columns: dict[tuple[str, str], dict[str, str]]  # (catalog, schema) -> {"table.column": data_type}
    tables: dict[tuple[str, str], set[str]]
    row_counts: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def open(
        cls, con: duckdb.DuckDBPyConnection, schema: str, vocab_schema: str, today: dt.date
    ) -> _Database:
        current = _scalar(con, "SELECT current_database()")
        cdm, vocab = _schema(schema, current), _schema(vocab_schema, current)
        columns: dict[tuple[str, str], dict[str, str]] = {}
        tables: dict[tuple[str, str], set[str]] = {}
        for s in {cdm, vocab}:
            key = (s.catalog, s.name)
            tables[key] = {
                name
                for (name,) in con.execute(
                    "SELECT lower(table_name) FROM information_schema.tables "
                    "WHERE lower(table_catalog) = $c AND lower(table_schema) = $s",
                    {"c": s.catalog, "s": s.name},
                ).fetchall()
            }
            columns[key] = {
                f"{t}.{c}": data_type.upper()
                for t, c, data_type in con.execute(
                    "SELECT lower(table_name), lower(column_name), data_type FROM information_schema.columns "
                    "WHERE lower(table_catalog) = $c AND lower(table_schema) = $s",
                    {"c": s.catalog, "s": s.name},
                ).fetchall()
            }
        return cls(con, cdm, vocab, today, columns, tables)

    def schema_of(self, table: str) -> _Schema:
        spec = cdm_spec()
        is_vocab = table in spec.table_names and spec.table(table).is_vocabulary
        return self.vocab if is_vocab else self.cdm

    def table(self, name: str) -> str:
        return f"{self.schema_of(name).sql}.{quote_identifier(name)}"

    def require(self, table: str, *columns: str) -> None:
        """Raise NotApplicable unless the table and its columns exist."""
        s = self.schema_of(table)
        if table not in self.tables[(s.catalog, s.name)]:
            raise NotApplicable(f"table {table} does not exist in {s.catalog}.{s.name}")
        missing = [c for c in columns if f"{table}.{c}" not in self.columns[(s.catalog, s.name)]]
        if missing:
            raise NotApplicable(f"field {', '.join(f'{table}.{c}' for c in missing)} does not exist")

    def require_rows(self, table: str) -> None:
        """Raise NotApplicable when the (existing) table is empty."""
        if table not in self.row_counts:
            self.row_counts[table] = int(_scalar(self.con, f"SELECT count(*) FROM {self.table(table)}"))
        if self.row_counts[table] == 0:
            raise NotApplicable(f"table {table} is empty")

    def type_of(self, table: str, column: str) -> str:
        s = self.schema_of(table)
        return self.columns[(s.catalog, s.name)][f"{table}.{column}"]


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None  # an aggregate or a function call: always one row
    return row[0]


def _schema(qualified: str, current_catalog: str) -> _Schema:
    parts = _parts(qualified)
    if len(parts) == 1:
        return _Schema(current_catalog.lower(), parts[0].lower(), _qualified(qualified))
    if len(parts) == 2:
        return _Schema(parts[0].lower(), parts[1].lower(), _qualified(qualified))
    raise ValueError(f"schema: expected 'schema' or 'database.schema', found {qualified!r}")


def _parts(qualified: str) -> list[str]:
    return [p.strip().strip('"') for p in qualified.split(".")]


def _qualified(qualified: str) -> str:
    return ".".join(quote_identifier(p) for p in _parts(qualified))


# --- planning: a check -> template, identifiers and values -----------------------------------------


@dataclass(frozen=True)
class _Plan:
    template: str  # check type = template file name
    identifiers: Mapping[str, str]
    params: Mapping[str, Any]

    @property
    def sql(self) -> str:
        return _template(self.template).format(**self.identifiers)

    @property
    def scan_table(self) -> str | None:
        """The table when this check can share a single scan with others of the same table."""
        table = self.identifiers.get("table", "")
        return table if _scan_parts(self.template) and "$" not in table else None


_Planner = Callable[[DqdCheck, _Database], _Plan]
_PLANNERS: dict[str, _Planner] = {}


def _planner(*names: str) -> Callable[[_Planner], _Planner]:
    def register(function: _Planner) -> _Planner:
        for name in names:
            _PLANNERS[name] = function
        return function

    return register


def _plan(check: DqdCheck, db: _Database) -> _Plan:
    planner = _PLANNERS.get(check.check_name)
    if planner is None:
        raise NotApplicable(f"check type {check.check_name} has no SQL template in this implementation")
    return planner(check, db)


def _field(check: DqdCheck) -> str:
    if not check.field:
        raise NotApplicable(f"{check.check_name} needs a field; the catalogue row has none")
    return check.field


def _param(check: DqdCheck, name: str) -> str:
    value = check.params.get(name)
    if value is None:
        raise NotApplicable(f"the catalogue gives no {name} for this check")
    return value


def _table_and_field(check: DqdCheck, db: _Database, *more_columns: str) -> dict[str, str]:
    field = _field(check)
    db.require(check.table, field, *more_columns)
    db.require_rows(check.table)
    return {"table": db.table(check.table), "field": quote_identifier(field)}


@_planner("cdmTable")
def _plan_cdm_table(check: DqdCheck, db: _Database) -> _Plan:
    s = db.schema_of(check.table)
    return _Plan("cdmTable", {}, {"catalog": s.catalog, "schema_name": s.name, "table_name": check.table})


@_planner("cdmField")
def _plan_cdm_field(check: DqdCheck, db: _Database) -> _Plan:
    s = db.schema_of(check.table)
    params = {"catalog": s.catalog, "schema_name": s.name, "table_name": check.table}
    return _Plan("cdmField", {}, {**params, "column_name": _field(check)})


@_planner(
    "isRequired",
    "cdmDatatype",
    "isPrimaryKey",
    "measureValueCompleteness",
    "standardConceptRecordCompleteness",
    "sourceConceptRecordCompleteness",
)
def _plan_field(check: DqdCheck, db: _Database) -> _Plan:
    return _Plan(check.check_name, _table_and_field(check, db), {})


@_planner("isForeignKey")
def _plan_foreign_key(check: DqdCheck, db: _Database) -> _Plan:
    fk_table, fk_field = _param(check, "fkTableName"), _param(check, "fkFieldName")
    identifiers = _table_and_field(check, db)
    db.require(fk_table, fk_field)
    return _Plan(
        "isForeignKey",
        {**identifiers, "fk_table": db.table(fk_table), "fk_field": quote_identifier(fk_field)},
        {},
    )


def _concept_plan(check: DqdCheck, db: _Database, concept_columns: Sequence[str], params: dict) -> _Plan:
    identifiers = _table_and_field(check, db)
    db.require("concept", "concept_id", *concept_columns)
    return _Plan(check.check_name, {**identifiers, "concept": db.table("concept")}, params)


@_planner("fkDomain")
def _plan_fk_domain(check: DqdCheck, db: _Database) -> _Plan:
    return _concept_plan(check, db, ["domain_id"], {"domain": _param(check, "fkDomain")})


@_planner("fkClass")
def _plan_fk_class(check: DqdCheck, db: _Database) -> _Plan:
    return _concept_plan(check, db, ["concept_class_id"], {"concept_class": _param(check, "fkClass")})


@_planner("isStandardValidConcept")
def _plan_standard_valid(check: DqdCheck, db: _Database) -> _Plan:
    return _concept_plan(check, db, ["standard_concept", "invalid_reason"], {})


@_planner("sourceValueCompleteness")
def _plan_source_value(check: DqdCheck, db: _Database) -> _Plan:
    concept_field = _param(check, "standardConceptFieldName")
    identifiers = _table_and_field(check, db, concept_field)
    return _Plan(
        "sourceValueCompleteness", {**identifiers, "concept_field": quote_identifier(concept_field)}, {}
    )


@_planner("plausibleValueLow", "plausibleValueHigh")
def _plan_value_bound(check: DqdCheck, db: _Database) -> _Plan:
    name = check.check_name
    high = name == "plausibleValueHigh"
    raw = _param(check, name)
    key = "high" if high else "low"
    if check.level != "CONCEPT":
        identifiers = _table_and_field(check, db)
        bound = translate_bound(raw, db.type_of(check.table, _field(check)), high=high, today=db.today)
        return _Plan(name, identifiers, {key: bound})
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
    return _Plan(name, {"table": subset, "field": quote_identifier("value_as_number")}, params)


def _compare_type(*types: str) -> str:
    """TIMESTAMP when every side is a datetime, else DATE: mixed date / datetime compare by day."""
    return "TIMESTAMP" if all(t.startswith("TIMESTAMP") for t in types) else "DATE"


@_planner("plausibleTemporalAfter")
def _plan_temporal_after(check: DqdCheck, db: _Database) -> _Plan:
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
    return _Plan(
        "plausibleTemporalAfter",
        {**identifiers, "after": after, "after_join": join, "compare_type": compare},
        {},
    )


@_planner("plausibleDuringLife", "plausibleBeforeDeath")
def _plan_death(check: DqdCheck, db: _Database) -> _Plan:
    identifiers = _table_and_field(check, db, "person_id")
    db.require("death", "person_id", "death_date")
    params = {"grace_days": DEATH_GRACE_DAYS} if check.check_name == "plausibleBeforeDeath" else {}
    return _Plan(check.check_name, {**identifiers, "death": db.table("death")}, params)


@_planner("plausibleAfterBirth")
def _plan_after_birth(check: DqdCheck, db: _Database) -> _Plan:
    identifiers = _table_and_field(check, db, "person_id")
    db.require("person", "person_id", "birth_datetime", "year_of_birth", "month_of_birth")
    return _Plan("plausibleAfterBirth", {**identifiers, "person": db.table("person")}, {})


@_planner("plausibleStartBeforeEnd")
def _plan_start_before_end(check: DqdCheck, db: _Database) -> _Plan:
    end_field = _param(check, "plausibleStartBeforeEndFieldName")
    identifiers = _table_and_field(check, db, end_field)
    compare = _compare_type(db.type_of(check.table, _field(check)), db.type_of(check.table, end_field))
    return _Plan(
        "plausibleStartBeforeEnd",
        {**identifiers, "end_field": quote_identifier(end_field), "compare_type": compare},
        {},
    )


@_planner("withinVisitDates")
def _plan_within_visit(check: DqdCheck, db: _Database) -> _Plan:
    identifiers = _table_and_field(check, db, "visit_occurrence_id")
    db.require("visit_occurrence", "visit_occurrence_id", "visit_start_date", "visit_end_date")
    return _Plan(
        "withinVisitDates",
        {**identifiers, "visit_occurrence": db.table("visit_occurrence")},
        {"window_days": VISIT_WINDOW_DAYS},
    )


@_planner("measurePersonCompleteness")
def _plan_person_completeness(check: DqdCheck, db: _Database) -> _Plan:
    db.require(check.table, "person_id")
    db.require("person", "person_id")
    db.require_rows(check.table)
    return _Plan(
        "measurePersonCompleteness", {"table": db.table(check.table), "person": db.table("person")}, {}
    )


@_planner("measureConditionEraCompleteness")
def _plan_condition_era_completeness(check: DqdCheck, db: _Database) -> _Plan:
    db.require(check.table, "person_id")
    db.require("condition_occurrence", "person_id", "condition_concept_id")
    db.require_rows("condition_occurrence")  # an empty era table is what this check is about
    identifiers = {"table": db.table(check.table), "condition_occurrence": db.table("condition_occurrence")}
    return _Plan("measureConditionEraCompleteness", identifiers, {})


@_planner("measureObservationPeriodOverlap")
def _plan_period_overlap(check: DqdCheck, db: _Database) -> _Plan:
    db.require(check.table, "person_id", "observation_period_start_date", "observation_period_end_date")
    db.require_rows(check.table)
    return _Plan(
        "measureObservationPeriodOverlap", {"table": db.table(check.table)}, {"adjacent_days": ADJACENT_DAYS}
    )


def _gender_concept(raw: str) -> int:
    concept = GENDER_CONCEPTS.get(raw.strip().lower())
    if concept is None:
        raise NotApplicable(f"unknown plausible gender {raw!r} (expected Male or Female)")
    return concept


@_planner("plausibleGender", "plausibleGenderUseDescendants")
def _plan_gender(check: DqdCheck, db: _Database) -> _Plan:
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
    return _Plan(check.check_name, identifiers, params)


@_planner("plausibleUnitConceptIds")
def _plan_units(check: DqdCheck, db: _Database) -> _Plan:
    if not check.concept_ids:
        raise NotApplicable("plausibleUnitConceptIds needs a concept; the catalogue row has none")
    raw = _param(check, "plausibleUnitConceptIds")
    try:
        units = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise NotApplicable(f"cannot read the unit list {raw!r}") from None
    identifiers = _table_and_field(check, db, "unit_concept_id", "value_as_number")
    return _Plan(
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


# --- templates and execution ----------------------------------------------------------------------


@cache
def _template(check_name: str) -> str:
    return (_TEMPLATE_DIR / f"{check_name}.sql").read_text(encoding="utf-8")


@cache
def _scan_parts(check_name: str) -> tuple[str, str] | None:
    """(violated, denominator) aggregate expressions when the template is a plain aggregate over
    ``{table}``, the shape that can be merged with other checks of the same table."""
    body = "\n".join(line for line in _template(check_name).splitlines() if not line.strip().startswith("--"))
    match = _SCAN.fullmatch(body.strip())
    return (match.group("violated"), match.group("denominator")) if match else None


@dataclass(frozen=True)
class _Outcome:
    violated: int | None = None
    denominator: int | None = None
    seconds: float = 0.0
    error: str | None = None


def _execute_all(con: duckdb.DuckDBPyConnection, plans: Sequence[_Plan | NotApplicable]) -> list[_Outcome]:
    """Run the plans: scan-shaped ones merged per table, light ones (existence and concept-level
    checks) a batch at a time in one UNION ALL, the rest one query each. Outcomes in plan order."""
    outcomes: list[_Outcome] = [_Outcome()] * len(plans)
    scans: dict[str, list[int]] = defaultdict(list)
    light: list[int] = []
    for index, plan in enumerate(plans):
        if not isinstance(plan, _Plan):
            continue
        if plan.scan_table is not None:
            scans[plan.scan_table].append(index)
        elif plan.template in _LIGHT_CHECKS:
            light.append(index)
        else:
            outcomes[index] = _execute(con, plan.sql, plan.params)
    for table, indexes in scans.items():
        batch = [cast(_Plan, plans[i]) for i in indexes]
        for index, outcome in zip(indexes, _execute_scan(con, table, batch), strict=True):
            outcomes[index] = outcome
    for start in range(0, len(light), _UNION_SIZE):
        indexes = light[start : start + _UNION_SIZE]
        batch = [cast(_Plan, plans[i]) for i in indexes]
        for index, outcome in zip(indexes, _execute_union(con, batch), strict=True):
            outcomes[index] = outcome
    return outcomes


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any]) -> _Outcome:
    start = time.perf_counter()
    try:
        row = con.execute(sql, dict(params) or None).fetchone()
    except duckdb.Error as error:
        return _Outcome(seconds=time.perf_counter() - start, error=f"{type(error).__name__}: {error}")
    assert row is not None
    return _Outcome(int(row[0] or 0), int(row[1] or 0), time.perf_counter() - start)


class _Binder:
    """Parameters of several checks in one query: each distinct value gets one name ($p0, $p1, ...),
    so checks sharing a value (the schema, a gender) share the parameter."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._names: dict[tuple[str, str], str] = {}

    def bind(self, sql: str, params: Mapping[str, Any]) -> str:
        return _PARAMETER.sub(
            lambda m: "$" + self._name(params[m.group(1)]) if m.group(1) in params else m.group(0), sql
        )

    def _name(self, value: Any) -> str:
        key = (type(value).__name__, repr(value))
        if key not in self._names:
            self._names[key] = name = f"p{len(self._names)}"
            self.params[name] = value
        return self._names[key]


def _execute_scan(con: duckdb.DuckDBPyConnection, table: str, plans: Sequence[_Plan]) -> list[_Outcome]:
    """All scan-shaped checks of one table in one query (one scan); execution time is shared out
    evenly. If the merged query fails, each check runs alone so the error lands where it belongs."""
    if len(plans) == 1:
        return [_execute(con, plans[0].sql, plans[0].params)]
    binder = _Binder()
    select: list[str] = []
    for k, plan in enumerate(plans):
        violated, denominator = cast(tuple[str, str], _scan_parts(plan.template))
        select.append(f"{binder.bind(violated.format(**plan.identifiers), plan.params)} AS v{k}")
        select.append(f"{binder.bind(denominator.format(**plan.identifiers), plan.params)} AS d{k}")
    sql = "SELECT " + ",\n       ".join(select) + f"\nFROM {table}"
    start = time.perf_counter()
    try:
        row = con.execute(sql, binder.params or None).fetchone()
    except duckdb.Error:
        return [_execute(con, plan.sql, plan.params) for plan in plans]
    assert row is not None
    share = (time.perf_counter() - start) / len(plans)
    return [_Outcome(int(row[2 * k] or 0), int(row[2 * k + 1] or 0), share) for k in range(len(plans))]


def _execute_union(con: duckdb.DuckDBPyConnection, plans: Sequence[_Plan]) -> list[_Outcome]:
    """Several one-row checks in one UNION ALL query, each branch tagged with its position; time is
    shared out evenly; on failure each check runs alone."""
    if len(plans) == 1:
        return [_execute(con, plans[0].sql, plans[0].params)]
    binder = _Binder()
    branches = [
        f"SELECT {k} AS k, num_violated_rows, num_denominator_rows FROM (\n{binder.bind(plan.sql, plan.params)}\n)"
        for k, plan in enumerate(plans)
    ]
    start = time.perf_counter()
    try:
        rows = con.execute("\nUNION ALL\n".join(branches), binder.params or None).fetchall()
    except duckdb.Error:
        return [_execute(con, plan.sql, plan.params) for plan in plans]
    share = (time.perf_counter() - start) / len(plans)
    by_branch = {k: (violated, denominator) for k, violated, denominator in rows}
    return [_Outcome(int(by_branch[k][0] or 0), int(by_branch[k][1] or 0), share) for k in range(len(plans))]


# --- turning outcomes into results ------------------------------------------------------------------


def _result(
    check: DqdCheck,
    plan: _Plan | NotApplicable,
    outcome: _Outcome,
    catalogue: DqdCatalogue,
    concept_names: Mapping[tuple[str, str | None, tuple[int, ...]], str],
    run_id: str,
    run_at: dt.datetime,
) -> CheckResult:
    check_type = _check_type(catalogue, check)
    na_reason: str | None = None
    pct: float | None = None
    failed = False
    if isinstance(plan, NotApplicable):
        na_reason = str(plan)
    elif outcome.error is None:
        denominator, violated = outcome.denominator or 0, outcome.violated or 0
        if denominator == 0 and check.check_name not in _EXISTENCE_CHECKS:
            na_reason = f"nothing to evaluate: no {_DENOMINATORS.get(check.check_name, 'rows to check')}"
        elif denominator:
            pct = violated / denominator
            failed = violated * 100 > check.threshold_pct * denominator  # pct * 100 > threshold, exactly
    is_error = outcome.error is not None
    status = "ERROR" if is_error else "NOT_APPLICABLE" if na_reason else "FAIL" if failed else "PASS"
    ran = isinstance(plan, _Plan)
    return CheckResult(
        run_id=run_id,
        run_at=run_at,
        check_id=check_id(check),
        check_name=check.check_name,
        check_level=check.level,
        cdm_table=check.table,
        cdm_field=check.field,
        concept_id=check.concept_ids[0] if check.concept_ids else None,
        concept_ids=",".join(map(str, check.concept_ids)) or None,
        unit_concept_id=check.unit_concept_id,
        status=status,
        num_violated_rows=outcome.violated if ran else None,
        num_denominator_rows=outcome.denominator if ran else None,
        pct_violated_rows=pct,
        threshold_pct=check.threshold_pct,
        failed=failed,
        not_applicable=na_reason is not None,
        not_applicable_reason=na_reason,
        is_error=is_error,
        error_message=outcome.error,
        severity=check.severity,
        kahn_context=check_type.kahn_context if check_type else "",
        kahn_category=check_type.kahn_category if check_type else "",
        kahn_subcategory=check_type.kahn_subcategory if check_type else "",
        check_description=_describe(check, check_type, concept_names),
        execution_seconds=round(outcome.seconds, 6),
        cannot_fail_reason=cannot_fail_reason(check),
        sql=_inline(plan.sql, plan.params) if isinstance(plan, _Plan) else None,
    )


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


def _check_type(catalogue: DqdCatalogue, check: DqdCheck) -> DqdCheckType | None:
    candidates = [t for t in catalogue.check_types if t.name == check.check_name]
    same_level = [t for t in candidates if t.level == check.level]
    return (same_level or candidates or [None])[0]


def _concept_names(catalogue: DqdCatalogue) -> dict[tuple[str, str | None, tuple[int, ...]], str]:
    return {
        (row.table, row.field, row.concept_ids): row.values["conceptName"]
        for row in catalogue.rows_at("CONCEPT")
        if "conceptName" in row.values
    }


def _describe(
    check: DqdCheck,
    check_type: DqdCheckType | None,
    concept_names: Mapping[tuple[str, str | None, tuple[int, ...]], str],
) -> str:
    if check_type is None:
        return ""
    values = {
        **check.params,
        "cdmTableName": check.table,
        "cdmFieldName": check.field or "",
        "conceptId": ",".join(map(str, check.concept_ids)),
        "conceptName": concept_names.get((check.table, check.field, check.concept_ids), ""),
    }
    text = re.sub(r"@(\w+)", lambda m: str(values.get(m.group(1), m.group(0))), check_type.description)
    return " ".join(text.split())


def _literal(value: Any) -> str:
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
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return quote_literal(str(value))


def _inline(sql: str, params: Mapping[str, Any]) -> str:
    """The query with its parameters written in as literals (for the sql column: runnable as is)."""
    return _PARAMETER.sub(lambda m: _literal(params[m.group(1)]) if m.group(1) in params else m.group(0), sql)


# --- command line -----------------------------------------------------------------------------------


FAIL_ON = ("any", "blocking", "never")
"""--fail-on policies of the command (see exit_code)."""


def exit_code(results: Iterable[CheckResult], fail_on: str = "any") -> int:
    """The command's exit status: 1 when a check the policy counts failed (its share of violated rows
    is above its threshold, so only applicable checks) or errored (its query failed), else 0.
    ``any`` counts every check, those that cannot fail included (one failing means the database was
    not built from the spec); ``blocking`` only the check types that stop publishing
    (``gate.STRUCTURAL_CHECKS``); ``never`` reports without failing."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on: expected one of {FAIL_ON}, found {fail_on!r}")
    counted = (lambda r: True) if fail_on == "any" else (lambda r: r.check_name in STRUCTURAL_CHECKS)
    bad = fail_on != "never" and any((r.failed or r.is_error) and counted(r) for r in results)
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rwe_assets.lib.quality.dqd WAREHOUSE.duckdb``: run every check against a CDM file
    opened read-only (results kept in memory unless --results-db), print the summary and failures and
    exit 1 when a check failed (--fail-on, see exit_code)."""
    parser = argparse.ArgumentParser(prog="python -m rwe_assets.lib.quality.dqd", description=main.__doc__)
    parser.add_argument("database", help="DuckDB file holding the CDM (opened read-only)")
    parser.add_argument("--schema", default="cdm", help="CDM schema in that file (default: cdm)")
    parser.add_argument("--results-db", help="DuckDB file to append results.dq_check_results to")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    parser.add_argument("--json", action="store_true", help="print the summary and failures as JSON")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="any",
        help="exit 1 when any check fails (default), only a publish-blocking one, or never",
    )
    args = parser.parse_args(argv)

    with duckdb.connect(args.results_db or ":memory:") as con:
        if args.threads:
            con.execute(f"SET threads = {int(args.threads)}")
        con.execute(f"ATTACH {_literal(args.database)} AS dqd_source (READ_ONLY)")
        start = time.perf_counter()
        results = run_checks(con, schema=f"dqd_source.{args.schema}")
        seconds = time.perf_counter() - start
    (_print_json if args.json else _print_text)(results, seconds)
    return exit_code(results, args.fail_on)


def _print_json(results: Sequence[CheckResult], seconds: float) -> None:
    summary = summarize(results)
    out = {
        "seconds": round(seconds, 2),
        **{k: v for k, v in summary.items() if not k.startswith("by_")},
        "failures": [
            {
                "check_id": r.check_id,
                "status": r.status,
                "num_violated_rows": r.num_violated_rows,
                "num_denominator_rows": r.num_denominator_rows,
                "pct_violated_rows": r.pct_violated_rows,
                "threshold_pct": r.threshold_pct,
                "cannot_fail_reason": r.cannot_fail_reason,
                "error_message": r.error_message,
            }
            for r in results
            if r.failed or r.is_error
        ],
    }
    json.dump(out, sys.stdout, indent=2)
    print()


def _print_text(results: Sequence[CheckResult], seconds: float) -> None:
    summary, scored = summarize(results), summarize(r for r in results if r.can_fail)
    rate, dqd_rate = summary["pass_rate"], summary["dqd_pass_rate"]
    print(
        f"{summary['total']} checks in {seconds:.1f}s: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['errors']} errors, {summary['not_applicable']} not applicable"
    )
    print(
        f"checks that can fail: {scored['total']} ({scored['total'] - scored['not_applicable']} applicable); "
        f"pass rate {_percent(rate)} (over all applicable checks, as DQD reports it: {_percent(dqd_rate)})"
    )
    cannot = summary["cannot_fail_checks"]
    print(
        f"checks that cannot fail on a CDM built from the spec: {cannot['total']}, {cannot['failed']} failed"
    )
    for reason, count in cannot["by_reason"].items():
        print(f"  {count:5} {reason}")
    for r in results:
        if r.failed or r.is_error:
            pct = (
                "" if r.pct_violated_rows is None else f" ({r.pct_violated_rows:.2%} > {r.threshold_pct:g}%)"
            )
            detail = r.error_message if r.is_error else f"{r.num_violated_rows}/{r.num_denominator_rows}{pct}"
            print(f"  {r.status:5} {r.check_id}: {detail}")


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


if __name__ == "__main__":
    sys.exit(main())
