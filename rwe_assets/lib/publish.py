"""Publishing: the built database becomes the file analysts open, atomically.

The build writes data/warehouse/build.duckdb; analysts open data/warehouse/rwe.duckdb read-only.
DuckDB allows one writing process or many readers, never both, so analysts never open the file the
pipeline writes. Publishing copies the build next to the published file and renames it over it: a
rename is atomic, so a reader opens either the old or the new database, never half of one, and readers
that already have the old file open keep reading it undisturbed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from rwe_assets.errors import RweError
from rwe_assets.lib.quality.gate import blocking_failures

PUBLISHED = "rwe.duckdb"
BUILD = "build.duckdb"


class PublishBlocked(RweError):
    """The build failed a structural data-quality check; the published file stays as it was."""


def publish(warehouse_dir: Path, require_quality: bool = True) -> Path:
    """Atomically replace warehouse/rwe.duckdb with a copy of warehouse/build.duckdb.

    With require_quality, the build must carry data-quality results (results.dq_check_results) whose
    latest run has no failed structural check; otherwise PublishBlocked, and nothing changes."""
    source = Path(warehouse_dir) / BUILD
    target = Path(warehouse_dir) / PUBLISHED
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: build the CDM first")
    _check_publishable(source, require_quality)
    staging = target.with_name(f".{PUBLISHED}.incoming")
    shutil.copyfile(source, staging)
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staging, target)
    return target


def _check_publishable(path: Path, require_quality: bool) -> None:
    """Refuse a file DuckDB cannot open, one without the CDM's person table, or (require_quality) one
    whose latest data-quality run is missing or failed a structural check."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SELECT count(*) FROM cdm.person").fetchone()
        if not require_quality:
            return
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
