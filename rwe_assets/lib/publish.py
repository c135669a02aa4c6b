"""Publishing: the built database becomes the file analysts open, atomically.

The build writes data/warehouse/build.duckdb; analysts open data/warehouse/rwe.duckdb read-only.
DuckDB allows one writing process or many readers, never both, so analysts never open the file the
pipeline writes. Publishing copies the build next to the published file and renames it over it: a
rename is atomic, so a reader opens either the old or the new database, never half of one, and readers
that already have the old file open keep reading it undisturbed.

Given the settings, publishing is audited (lib/governance/audit.py: a `build` row for the checked
build, a `publish` row for the swap or the refusal) and the published file is made readable by the
analyst group only (0640, lib/governance/permissions.py) before it becomes visible.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from rwe_assets.errors import RweError
from rwe_assets.lib.governance import audit, permissions
from rwe_assets.lib.quality.gate import blocking_failures
from rwe_assets.lib.sql_text import quote_identifier

PUBLISHED = "rwe.duckdb"
BUILD = "build.duckdb"


class PublishBlocked(RweError):
    """The build failed a structural data-quality check; the published file stays as it was."""


def publish(warehouse_dir: Path, require_quality: bool = True, *, settings=None) -> Path:
    """Atomically replace warehouse/rwe.duckdb with a copy of warehouse/build.duckdb.

    With require_quality, the build must carry data-quality results (results.dq_check_results) whose
    latest run has no failed structural check; otherwise PublishBlocked, and nothing changes.
    With settings, the outcome goes to the audit trail and the file to the analyst group."""
    source = Path(warehouse_dir) / BUILD
    target = Path(warehouse_dir) / PUBLISHED
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: build the CDM first")
    what = {"build": str(source), "published": str(target)}
    try:
        what.update(_check_publishable(source, require_quality))
    except PublishBlocked:
        _audit(settings, "publish", what, "refused")
        raise
    _audit(settings, "build", what)
    staging = target.with_name(f".{PUBLISHED}.incoming")
    shutil.copyfile(source, staging)
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    if settings is not None:
        permissions.share_with_analysts(staging, settings.analyst_group)
    os.replace(staging, target)
    _audit(settings, "publish", {**what, "size_bytes": target.stat().st_size})
    return target


def _audit(settings, action: str, what: dict, outcome: str = "ok") -> None:
    if settings is not None:
        audit.record(settings, action, what, outcome)


def _check_publishable(path: Path, require_quality: bool) -> dict[str, int]:
    """Refuse a file DuckDB cannot open, one without the CDM's person table, or (require_quality) one
    whose latest data-quality run is missing or failed a structural check. Returns its counts: persons,
    CDM tables and their rows (vocabulary tables included)."""
    with duckdb.connect(str(path), read_only=True) as con:
        counts = _cdm_counts(con)
        if not require_quality:
            return counts
        has_results = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'results' AND table_name = 'dq_check_results'"
        ).fetchone()[0]
        if not has_results:
            raise PublishBlocked(
                f"{path}: no data-quality results; run the checks (results/dq_check_results) first"
            )
        failures = blocking_failures(con)
    if failures:
        listed = ", ".join(f"{check} ({rows} rows)" for check, rows in failures[:10])
        raise PublishBlocked(f"{path}: {len(failures)} structural data-quality check(s) failed: {listed}")
    return counts


def _cdm_counts(con) -> dict[str, int]:
    persons = con.execute("SELECT count(*) FROM cdm.person").fetchone()[0]
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'cdm' ORDER BY 1"
        ).fetchall()
    ]
    rows = con.execute(
        "SELECT " + " + ".join(f"(SELECT count(*) FROM cdm.{quote_identifier(t)})" for t in tables)
    ).fetchone()[0]
    return {"persons": persons, "cdm_tables": len(tables), "cdm_rows": rows}
