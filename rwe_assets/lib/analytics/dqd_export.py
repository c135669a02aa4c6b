"""The DQD results as the JSON file OHDSI's DataQualityDashboard viewer loads.

DQD (v2.1 and later) writes one JSON object per run and its Shiny viewer reads it back; we write the
same layout from ``results.dq_check_results`` (lib/quality/dqd.py), so the viewer (and ARES, which
reads the same file) shows our checks:

- ``startTimestamp``, ``endTimestamp``: "YYYY-MM-DD HH:MM:SS" (UTC); the end is the start plus the
  checks' summed execution time, since the results table keeps only the start.
- ``executionTime``: "<n> secs", as DQD formats an R difftime.
- ``CheckResults``: one object per check, with DQD's camelCase names (numViolatedRows, pctViolatedRows
  (a fraction), numDenominatorRows, executionTime, queryText, checkName, checkLevel, checkDescription,
  cdmTableName, cdmFieldName, conceptId, unitConceptId, sqlFile, category, subcategory, context, warning,
  error, checkId, failed, passed, isError, notApplicable, notApplicableReason, thresholdValue, notesValue);
  flags are 0/1 and, as in DQD, a check whose query errored counts as failed.
- ``Metadata``: the CDM_SOURCE rows, camelCase, plus ``dqdVersion`` (ours, so no one mistakes the file
  for one DQD wrote).
- ``Overview``: DQD's summary counts (countTotal, countPassed, countErrorFailed, countThresholdFailed,
  countOverallFailed, percentPassed, percentFailed, and total/passed/failed per Kahn category).

Small cells (lib/analytics/disclosure.py): a check whose violated or denominator count is between 1 and
the minimum cell count - 1 has both counts and the percentage blanked (null, as for a check that did
not run); its pass/fail status stays, so the viewer's totals are unchanged. Concept-level checks count
records of one concept, which on a small database can single out a person.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from rwe_assets.lib.analytics.disclosure import min_cell_count as configured_min_cell_count
from rwe_assets.lib.analytics.disclosure import shown
from rwe_assets.lib.dqd_spec import dqd_catalogue
from rwe_assets.lib.sql_text import quote_identifier

EXPORT_VERSION = "rwe_assets dqd_export 1 (DQD v2.1 JSON layout)"
CATEGORIES = ("Plausibility", "Conformance", "Completeness")
_TIMESTAMP = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class DqdExport:
    path: Path
    run_id: str
    checks: int
    suppressed_checks: int  # checks whose counts were blanked as small cells
    min_cell_count: int


def latest_run_id(con: duckdb.DuckDBPyConnection, results_schema: str = "results") -> str | None:
    row = con.execute(
        f"SELECT run_id FROM {_table(results_schema, 'dq_check_results')} ORDER BY run_at DESC, run_id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def dqd_json(
    con: duckdb.DuckDBPyConnection,
    results_schema: str = "results",
    cdm_schema: str = "cdm",
    *,
    run_id: str | None = None,
    min_cell_count: int | None = None,
) -> tuple[dict[str, Any], int]:
    """The viewer's JSON object for one DQD run (default: the latest) and how many checks had small
    cells blanked. Raises LookupError when the results table holds no run."""
    run_id = run_id or latest_run_id(con, results_schema)
    if run_id is None:
        raise LookupError(f"{results_schema}.dq_check_results holds no data-quality run")
    minimum = configured_min_cell_count() if min_cell_count is None else min_cell_count
    rows = _rows(con, results_schema, run_id)
    if not rows:
        raise LookupError(f"{results_schema}.dq_check_results holds no checks of run {run_id!r}")
    checks = [_check(row) for row in rows]
    suppressed = sum(_suppress(check, minimum) for check in checks)
    start = rows[0]["run_at"]
    seconds = sum(row["execution_seconds"] or 0.0 for row in rows)
    document = {
        "startTimestamp": start.strftime(_TIMESTAMP),
        "endTimestamp": (start + dt.timedelta(seconds=seconds)).strftime(_TIMESTAMP),
        "executionTime": f"{seconds:.0f} secs",
        "CheckResults": checks,
        "Metadata": _metadata(con, cdm_schema),
        "Overview": overview(checks),
    }
    return document, suppressed


def write_dqd_json(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    results_schema: str = "results",
    cdm_schema: str = "cdm",
    *,
    run_id: str | None = None,
    min_cell_count: int | None = None,
) -> DqdExport:
    """Write the JSON beside the database (atomically: a viewer never reads half a file)."""
    minimum = configured_min_cell_count() if min_cell_count is None else min_cell_count
    document, suppressed = dqd_json(con, results_schema, cdm_schema, run_id=run_id, min_cell_count=minimum)
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    os.replace(partial, path)
    return DqdExport(path, run_id or latest_run_id(con, results_schema) or "", len(document["CheckResults"]),
                     suppressed, minimum)  # fmt: skip


def overview(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """DQD's Overview block: failed includes errored checks (countOverallFailed), threshold failures
    exclude them; percentages are over passed + failed, rounded to 2 places as DQD does."""
    passed = sum(c["passed"] for c in checks)
    failed = sum(c["failed"] for c in checks)
    out: dict[str, Any] = {
        "countTotal": len(checks),
        "countPassed": passed,
        "countErrorFailed": sum(c["isError"] for c in checks),
        "countThresholdFailed": sum(c["failed"] and not c["isError"] for c in checks),
        "countOverallFailed": failed,
        "percentPassed": round(100 * passed / (passed + failed), 2) if passed + failed else 0,
        "percentFailed": round(100 * failed / (passed + failed), 2) if passed + failed else 0,
    }
    for category in CATEGORIES:
        out[f"countTotal{category}"] = sum(c["category"] == category for c in checks)
    for category in CATEGORIES:
        out[f"countFailed{category}"] = sum(c["category"] == category and c["failed"] for c in checks)
    for category in CATEGORIES:
        out[f"countPassed{category}"] = sum(c["category"] == category and c["passed"] for c in checks)
    return out


def _table(schema: str, table: str) -> str:
    return ".".join(quote_identifier(part) for part in [*schema.split("."), table])


def _rows(con: duckdb.DuckDBPyConnection, results_schema: str, run_id: str) -> list[dict[str, Any]]:
    cursor = con.execute(
        f"SELECT * FROM {_table(results_schema, 'dq_check_results')} WHERE run_id = ? ORDER BY check_id",
        [run_id],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@cache
def _sql_files() -> dict[tuple[str, str], str]:
    return {(t.level, t.name): t.sql_file for t in dqd_catalogue().check_types}


def _check(row: dict[str, Any]) -> dict[str, Any]:
    """One CheckResults entry from one dq_check_results row."""
    is_error = bool(row["is_error"])
    table = (row["cdm_table"] or "").upper()
    field = row["cdm_field"].upper() if row["cdm_field"] else None
    concept = row["concept_id"] if "," not in (row["concept_ids"] or "") else row["concept_ids"]
    unit = row["unit_concept_id"]
    return {
        "numViolatedRows": row["num_violated_rows"],
        "pctViolatedRows": row["pct_violated_rows"],
        "numDenominatorRows": row["num_denominator_rows"],
        "executionTime": f"{row['execution_seconds'] or 0.0:.6f} secs",
        "queryText": row["sql"],
        "checkName": row["check_name"],
        "checkLevel": row["check_level"],
        "checkDescription": row["check_description"],
        "cdmTableName": table,
        "cdmFieldName": field,
        "conceptId": concept,
        "unitConceptId": unit,
        "sqlFile": _sql_files().get((row["check_level"], row["check_name"])),
        "category": row["kahn_category"],
        "subcategory": row["kahn_subcategory"] or None,
        "context": row["kahn_context"],
        "warning": None,
        "error": row["error_message"],
        "checkId": _dqd_check_id(row["check_level"], row["check_name"], table, field, concept, unit),
        "failed": int(bool(row["failed"]) or is_error),
        "passed": int(row["status"] == "PASS"),
        "isError": int(is_error),
        "notApplicable": int(bool(row["not_applicable"])),
        "notApplicableReason": row["not_applicable_reason"],
        "thresholdValue": row["threshold_pct"],
        "notesValue": None,
    }


def _dqd_check_id(*parts: Any) -> str:
    """DQD's check id: level, name, table, field, concept and unit, the blank ones left out, joined by
    "_", lower case (e.g. field_isrequired_person_gender_concept_id)."""
    return "_".join(str(part) for part in parts if part not in (None, "")).lower()


def _suppress(check: dict[str, Any], minimum: int) -> bool:
    """Blank a check's counts when either is a small cell; True when it did."""
    if shown(check["numViolatedRows"], minimum) and shown(check["numDenominatorRows"], minimum):
        return False
    check["numViolatedRows"] = check["numDenominatorRows"] = check["pctViolatedRows"] = None
    return True


def _metadata(con: duckdb.DuckDBPyConnection, cdm_schema: str) -> list[dict[str, Any]]:
    cursor = con.execute(f"SELECT * FROM {_table(cdm_schema, 'cdm_source')}")
    names = [_camel(d[0]) for d in cursor.description]
    rows = [dict(zip(names, (_plain(v) for v in row), strict=True)) for row in cursor.fetchall()]
    return [{**row, "dqdVersion": EXPORT_VERSION} for row in rows]


def _camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.title() for part in rest)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
