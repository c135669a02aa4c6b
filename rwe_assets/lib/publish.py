"""Publishing: the built database becomes the file analysts open, atomically.

The build writes data/warehouse/build.duckdb; analysts open data/warehouse/rwe.duckdb read-only.
DuckDB allows one writing process or many readers, never both, so analysts never open the file the
pipeline writes. Publishing copies the build next to the published file and renames it over it: a
rename is atomic, so a reader opens either the old or the new database, never half of one, and readers
that already have the old file open keep reading it undisturbed.

Given the settings, publishing is audited (lib/governance/audit.py: a `build` row for the checked
build, a `publish` row for the swap or the refusal) and the published file is made readable by the
analyst group only (0640, lib/governance/permissions.py) before it becomes visible.

An incremental CDM build merges into a copy of the last build, and DuckDB keeps the space of the rows
it deletes (free blocks, and deleted rows inside kept row groups), so a byte copy would grow with every
incremental build. When more than COMPACT_SHARE of the build file is reclaimable, the copy is made
instead by `COPY FROM DATABASE` into a fresh file (every schema, table, view, macro, index, sequence,
type and comment), checked object by object and row by row against the build before the swap.

The reclaimable share is the larger of two estimates. DuckDB's own (free blocks; deleted rows, which
duckdb_tables().estimated_size still counts) misses half-filled blocks: after one incremental build at
600 persons it said 18% where compacting gave back 34%. So each publish of a fresh file (a compaction,
or a full build, written anew) records its bytes per live row in COMPACT_RECORD, and the build is
measured against that too: 1 - (that ratio x its live rows) / its size. An incremental build with no
record to measure against is compacted.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from rwe_assets.errors import RweError
from rwe_assets.lib.governance import audit, permissions
from rwe_assets.lib.quality.gate import blocking_failures
from rwe_assets.lib.sql_text import quote_identifier, quote_literal
from rwe_assets.lib.warehouse_files import BUILD, PUBLISHED  # importers take them from here too

# Compact when the build file's reclaimable share (estimated: Space.reclaimable) passes this:
# the published file then stays under about 1 / (1 - 0.25) = 1.33x its compact size.
# Compaction rewrites every table (slower than a byte copy), so it is not done on every publish.
COMPACT_SHARE = 0.25
INCOMING = f".{PUBLISHED}.incoming"
COMPACT_RECORD = f".{PUBLISHED}.compact.json"  # bytes and live rows of the last fresh file published
# The table only an incremental build (a merge into a copy of the last one) has: lib/cdm/incremental.py
# writes it (its BUILD_MARK is this).
INCREMENTAL_MARK = ("results", "incremental_build")


@dataclass(frozen=True)
class Space:
    """How much of a DuckDB file holds live data (pragma database_size, duckdb_tables())."""

    file_bytes: int
    total_blocks: int
    free_blocks: int
    rows: int  # live rows of every table
    stored_rows: int  # duckdb_tables().estimated_size: deleted rows included
    incremental: bool  # a merge into a copy of the last build (INCREMENTAL_MARK)
    bytes_per_row: float | None = None  # of the last fresh file published (COMPACT_RECORD)

    @property
    def reclaimable(self) -> float:
        """Share of the file a compaction would give back, estimated (the module's docstring)."""
        if not self.total_blocks:
            return 0.0
        free = self.free_blocks / self.total_blocks
        dead = 1 - self.rows / self.stored_rows if self.stored_rows > self.rows else 0.0
        by_blocks = free + (1 - free) * dead
        if self.bytes_per_row is None or not self.file_bytes:
            return by_blocks
        return max(by_blocks, 1 - self.bytes_per_row * self.rows / self.file_bytes)

    def decide(self) -> tuple[bool, str]:
        """(compact?, why)."""
        if self.incremental and self.bytes_per_row is None:
            return (
                True,
                "compacted: an incremental build, and no compact file published to measure it against",
            )
        compact = self.reclaimable > COMPACT_SHARE
        verb, over = ("compacted", "over") if compact else ("copied", "not over")
        return (
            compact,
            f"{verb}: {self.reclaimable:.0%} of the build file reclaimable, {over} {COMPACT_SHARE:.0%}",
        )


@dataclass(frozen=True)
class Published:
    """What one publish did, for the asset's metadata."""

    path: Path
    size_bytes: int
    build_bytes: int
    compacted: bool
    reason: str  # why it was compacted or copied
    reclaimable: float  # the build file's estimated reclaimable share


class PublishBlocked(RweError):
    """The build failed a structural data-quality check; the published file stays as it was."""


def publish(warehouse_dir: Path, require_quality: bool = True, *, settings=None) -> Path:
    """Atomically replace warehouse/rwe.duckdb with a copy of warehouse/build.duckdb (`publish_file`)."""
    return publish_file(warehouse_dir, require_quality, settings=settings).path


def publish_file(warehouse_dir: Path, require_quality: bool = True, *, settings=None) -> Published:
    """Atomically replace warehouse/rwe.duckdb with a copy of warehouse/build.duckdb, compacted when
    more than COMPACT_SHARE of the build file is reclaimable.

    With require_quality, the build must carry data-quality results (results.dq_check_results) whose
    latest run has no failed structural check; otherwise PublishBlocked, and nothing changes.
    With settings, the outcome goes to the audit trail and the file to the analyst group."""
    source = Path(warehouse_dir) / BUILD
    target = Path(warehouse_dir) / PUBLISHED
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: build the CDM first")
    what = {"build": str(source), "published": str(target)}
    try:
        counts, space = _check_publishable(source, require_quality)
        what.update(counts)
        space = replace(space, bytes_per_row=_recorded_bytes_per_row(target.with_name(COMPACT_RECORD)))
    except PublishBlocked:
        _audit(settings, "publish", what, "refused")
        raise
    _audit(settings, "build", what)
    staging = target.with_name(INCOMING)
    _remove_database(staging)  # and the log a killed compaction left, which DuckDB would replay
    compact, reason = space.decide()
    if compact:
        compact_database(source, staging, settings)
    else:
        shutil.copyfile(source, staging)
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    if settings is not None:
        permissions.share_with_analysts(staging, settings.analyst_group)
    os.replace(staging, target)
    size = target.stat().st_size
    if compact or not space.incremental:  # a fresh file: what a compact one weighs per row
        _record_fresh(target.with_name(COMPACT_RECORD), size, space.rows)
    _audit(settings, "publish", {**what, "size_bytes": size, "compacted": compact})
    return Published(target, size, space.file_bytes, compact, reason, space.reclaimable)


def space_of(path: Path) -> Space:
    """The Space of the DuckDB file at `path` (opened read-only), measured against the bytes per row
    of the last fresh file published beside it (COMPACT_RECORD)."""
    with duckdb.connect(str(path), read_only=True) as con:
        space = measure_space(con, path)
    return replace(space, bytes_per_row=_recorded_bytes_per_row(path.with_name(COMPACT_RECORD)))


def _recorded_bytes_per_row(record: Path) -> float | None:
    try:
        fresh = json.loads(record.read_text())
        return fresh["bytes"] / fresh["rows"] if fresh["rows"] else None
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: measured by blocks only
        return None


def _record_fresh(record: Path, size: int, rows: int) -> None:
    written = record.with_name(record.name + ".tmp")
    written.write_text(json.dumps({"bytes": size, "rows": rows}))
    os.replace(written, record)


def compact_database(
    source: Path, target: Path, settings=None, limits: tuple[str, int] | None = None
) -> None:
    """Write `target` anew with everything `source` holds (`COPY FROM DATABASE`: schemas, tables,
    views, macros, indexes, sequences, types, comments), then check that it holds the same objects
    and, table by table, the same number of rows; a difference raises and `target` is removed.
    DuckDB's memory limit and threads: `limits`, else the settings', else 1GB and 2."""
    memory, threads = (settings.cdm_memory_limit, settings.duckdb_threads) if settings else ("1GB", 2)
    memory, threads = limits or (memory, threads)
    spill = target.with_name(target.name + ".tmp")
    con = duckdb.connect(config={"memory_limit": memory, "threads": threads, "temp_directory": str(spill)})
    try:
        con.execute(f"ATTACH {quote_literal(str(source))} AS build (READ_ONLY)")
        con.execute(f"ATTACH {quote_literal(str(target))} AS compacted")
        con.execute("COPY FROM DATABASE build TO compacted")
        con.execute("CHECKPOINT compacted")
        missing = _differences(con, "build", "compacted")
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    if missing:
        _remove_database(target)
        raise RweError(f"compacting {source.name} lost or changed: {', '.join(missing[:10])}")


def _differences(con, left: str, right: str) -> list[str]:
    """What `right` lacks or holds differently from `left`: objects (with their SQL and comments)
    and each table's row count."""
    found = []
    for kind, query in _CATALOGUE.items():
        mine = set(con.execute(query.format(db=quote_literal(left))).fetchall())
        theirs = set(con.execute(query.format(db=quote_literal(right))).fetchall())
        found += [f"{kind} {row[0]}.{row[1]}" for row in sorted(mine ^ theirs, key=str)]
    for schema, table in con.execute(_CATALOGUE["table"].format(db=quote_literal(left))).fetchall():
        name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        rows = [con.execute(f"SELECT count(*) FROM {db}.{name}").fetchone()[0] for db in (left, right)]
        if rows[0] != rows[1]:
            found.append(f"rows of {schema}.{table}")
    return found


# What a compaction must keep, per kind: rows (schema, name, what must be equal) of one database.
_CATALOGUE = {
    "table": "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = {db}",
    "table comment": "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = {db}",
    "column": "SELECT schema_name, table_name, column_name, data_type, column_default, is_nullable, "
    "comment FROM duckdb_columns() WHERE database_name = {db}",
    "view": "SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE database_name = {db} "
    "AND NOT internal",
    "macro": "SELECT schema_name, function_name, macro_definition, comment FROM duckdb_functions() "
    "WHERE database_name = {db} AND NOT internal AND function_type IN ('macro', 'table_macro')",
    "index": "SELECT schema_name, index_name, sql FROM duckdb_indexes() WHERE database_name = {db}",
    "sequence": "SELECT schema_name, sequence_name FROM duckdb_sequences() WHERE database_name = {db}",
    "type": "SELECT schema_name, type_name FROM duckdb_types() WHERE database_name = {db} AND NOT internal",
    "constraint": "SELECT schema_name, table_name, constraint_type, constraint_text FROM duckdb_constraints() "
    "WHERE database_name = {db}",
    "schema": "SELECT schema_name, comment FROM duckdb_schemas() WHERE database_name = {db} AND NOT internal",
}


def _remove_database(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _audit(settings, action: str, what: dict, outcome: str = "ok") -> None:
    if settings is not None:
        audit.record(settings, action, what, outcome)


def _check_publishable(path: Path, require_quality: bool) -> tuple[dict[str, int], Space]:
    """Refuse a file DuckDB cannot open, one without the CDM's person table, or (require_quality) one
    whose latest data-quality run is missing or failed a structural check. Returns its counts (persons,
    CDM tables and their rows, vocabulary tables included) and how much of the file is live."""
    with duckdb.connect(str(path), read_only=True) as con:
        counts, space = _cdm_counts(con), measure_space(con, path)
        if not require_quality:
            return counts, space
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
    return counts, space


def measure_space(con, path: Path) -> Space:
    """The Space of the database `con` has open (its main database), stored at `path`."""
    total, free = con.execute(
        "SELECT total_blocks, free_blocks FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    tables = con.execute(
        "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
        "WHERE database_name = current_database()"
    ).fetchall()
    rows = 0
    for schema, table, _ in tables:
        name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        rows += con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    stored = sum(size for *_, size in tables)
    incremental = any((schema, table) == INCREMENTAL_MARK for schema, table, _ in tables)
    return Space(path.stat().st_size, total, free, rows, stored, incremental)


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
