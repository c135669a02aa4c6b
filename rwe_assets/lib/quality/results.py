"""DQD results: one ``CheckResult`` per check, the ``results.dq_check_results`` table they are written to
(one table holds every run, keyed by run_id), and the summary counts and pass rates."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from rwe_assets.lib.dqd_spec import DqdCatalogue, DqdCheck, DqdCheckType
from rwe_assets.lib.quality.catalogue import EXISTENCE_CHECKS, cannot_fail_reason, check_id, denominator_of
from rwe_assets.lib.quality.database import NotApplicable, quote_qualified
from rwe_assets.lib.quality.planner import Plan, inline
from rwe_assets.lib.sql_text import quote_identifier

RESULTS_TABLE = "dq_check_results"


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


@dataclass(frozen=True)
class Outcome:
    violated: int | None = None
    denominator: int | None = None
    seconds: float = 0.0
    error: str | None = None


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
    schema_sql = quote_qualified(results_schema)
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
        [{name: getattr(r, name) for name, _ in RESULT_COLUMNS} for r in results],  # asdict deep-copies: slow
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


# --- turning outcomes into results ------------------------------------------------------------------


def to_result(
    check: DqdCheck,
    plan: Plan | NotApplicable,
    outcome: Outcome,
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
        if denominator == 0 and check.check_name not in EXISTENCE_CHECKS:
            na_reason = f"nothing to evaluate: no {denominator_of(check.check_name)}"
        elif denominator:
            pct = violated / denominator
            failed = violated * 100 > check.threshold_pct * denominator  # pct * 100 > threshold, exactly
    is_error = outcome.error is not None
    status = "ERROR" if is_error else "NOT_APPLICABLE" if na_reason else "FAIL" if failed else "PASS"
    ran = isinstance(plan, Plan)
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
        sql=inline(plan.sql, plan.params) if isinstance(plan, Plan) else None,
    )


def _check_type(catalogue: DqdCatalogue, check: DqdCheck) -> DqdCheckType | None:
    candidates = [t for t in catalogue.check_types if t.name == check.check_name]
    same_level = [t for t in candidates if t.level == check.level]
    return (same_level or candidates or [None])[0]


def concept_names_of(catalogue: DqdCatalogue) -> dict[tuple[str, str | None, tuple[int, ...]], str]:
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
