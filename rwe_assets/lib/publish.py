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

PUBLISHED = "rwe.duckdb"
BUILD = "build.duckdb"


def publish(warehouse_dir: Path) -> Path:
    """Atomically replace warehouse/rwe.duckdb with a copy of warehouse/build.duckdb."""
    source = Path(warehouse_dir) / BUILD
    target = Path(warehouse_dir) / PUBLISHED
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: build the CDM first")
    _check_readable(source)
    staging = target.with_name(f".{PUBLISHED}.incoming")
    shutil.copyfile(source, staging)
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staging, target)
    return target


def _check_readable(path: Path) -> None:
    """Refuse to publish a file DuckDB cannot open, or one without the CDM's person table."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SELECT count(*) FROM cdm.person").fetchone()
