"""Incremental staging, the plan (issue 26): whether a staging run is full, incremental or unchanged,
and why (the fallback rule: docs/operations.md, "Incremental refresh"), and the state it reads that
from.

State. Every Delta commit a staging run makes carries the run's id as commit metadata (STATE_KEY),
and `staging/_staged_files`, written last, lists the raw files (source, batch, sha256) that run
staged, with the digest of what else staging reads (DIGEST_KEY: its code and SQL, the registry, the
tombstones). A table whose last commit names another run was left behind by an interrupted run, or
written by another step: the next run is a full build. So a crash between two table commits never
passes for a good state, and each table stays readable at its last commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties

from rwe_assets.lib import lake
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.staging.model import TABLES

STATE_KEY = "rwe.staging_state"
DIGEST_KEY = "rwe.staging_digest"
TABLES_KEY = "rwe.staging_tables"  # on STAGED_FILES: the run id each table's last commit must carry
STAGED_FILES = "_staged_files"
TOUCHED = "_touched"
PENDING_PREFIX = "_pending_"
REFERENCE_REASONS = ("ORPHAN_PERSON", "MISSING_VISIT", "MISSING_EVENT")
# A batch set whose raw rows exceed this share of all current raw rows is staged by a full build:
# a large scope costs more to merge than to rebuild (docs/operations.md, "Incremental refresh").
FULL_BUILD_SHARE = 0.2
_PACKAGE = Path(__file__).resolve().parents[1]
# What decides a staged row: staging's code and SQL, and what it calls (the tombstones' tokens are the
# linkage's normalization macros; quoting; the lake's readers)
_CODE = (
    "staging/*.py",
    "sql/staging/**/*",
    "sources.py",
    "raw_ingest/model.py",
    "governance/tombstone.py",
    "sql/linkage/normalize.sql",
    "sql_text.py",
    "lake.py",
)
OUT_OF_STEP = "staging tables out of step (an interrupted run, or a table written by another step)"


class FullBuildNeeded(Exception):
    """A change an incremental run cannot stage as a full build would: build_staging rebuilds instead
    (nothing has been written when it is raised)."""


@dataclass
class Plan:
    mode: str  # 'full', 'incremental' or 'unchanged'
    reason: str
    state: str = field(default_factory=lambda: uuid.uuid4().hex)
    digest: str = ""
    current: dict[str, list[dict]] = field(default_factory=dict)  # source -> current manifest rows
    new: dict[str, list[dict]] = field(default_factory=dict)  # source -> manifest rows not staged yet
    staged_batches: dict[str, set[str]] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # table -> run id of its last commit

    def commit(self, table: str) -> CommitProperties:
        """The commit metadata of a write of `table` by this run (recorded in plan.tables)."""
        self.tables[table] = self.state
        metadata = {STATE_KEY: self.state, DIGEST_KEY: self.digest}
        if table == STAGED_FILES:
            metadata[TABLES_KEY] = json.dumps(self.tables, sort_keys=True)
        return CommitProperties(custom_metadata=metadata)


def pending_tables() -> list[str]:
    """Tables whose rows can wait for a parent (they have a reference check)."""
    return [t.name for t in TABLES if "source_person_id" in t.column_names and t.name != "person_source"]


def state_tables() -> list[str]:
    """Every table a staging run writes but STAGED_FILES (written last)."""
    from rwe_assets.lib.staging.build import MERGED, NOT_MODELLED, QUARANTINE, RETIRED

    names = [*(t.name for t in TABLES), QUARANTINE, MERGED, RETIRED, NOT_MODELLED]
    return [*names, *(PENDING_PREFIX + t for t in pending_tables()), TOUCHED]


def staging_digest(lake_dir, registry: SourceRegistry) -> str:
    """sha256 over staging's code and SQL, the staged sources' registry entries and the tombstones'
    Delta version: a change to any of them can change every staged row."""
    digest = hashlib.sha256()
    for pattern in _CODE:
        for path in sorted(_PACKAGE.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update(f"duckdb {duckdb.__version__}".encode())  # its functions parse and cast every row
    digest.update(repr([s for s in registry if s.staging_profile]).encode())
    tombstones = lake.open_table(tombstone.tombstone_path(lake_dir))
    digest.update(f"{tombstones.metadata().id}:{tombstones.version()}".encode() if tombstones else b"-")
    return digest.hexdigest()


def plan_staging(lake_dir, registry: SourceRegistry, current: dict[str, list[dict]], allow: bool) -> Plan:
    """Full, incremental or unchanged, and why (the fallback rule: docs/operations.md)."""
    plan = Plan("full", "", digest=staging_digest(lake_dir, registry), current=current)
    prior = _prior_state(lake_dir)
    if not allow:
        plan.reason = "full build requested"
    elif prior is None:
        plan.reason = "no complete earlier staging (first run, or staged before this rule)"
    elif prior[0] is None:
        plan.reason = OUT_OF_STEP
    elif prior[1] != plan.digest:
        plan.reason = "staging code, SQL, registry or tombstones (an erasure) changed"
    else:
        plan.tables = dict(prior[0])
        plan.reason = _diff_files(plan, prior[2])
    return plan


def _prior_state(lake_dir) -> tuple[dict | None, str, set[tuple[str, str, str]]] | None:
    """(table -> run id, or None when a table's last commit is not the one the state names; the
    digest; the staged files), or None without a state."""
    files = lake.open_table(staging_path(lake_dir, STAGED_FILES))
    if files is None:
        return None
    last = files.history(1)[0]
    tables = json.loads(last.get(TABLES_KEY) or "{}")
    for name in state_tables():
        table = lake.open_table(staging_path(lake_dir, name))
        if table is None or name not in tables or table.history(1)[0].get(STATE_KEY) != tables[name]:
            tables = None
            break
    rows = files.to_pyarrow_table(columns=["source_system", "batch_id", "file_sha256"]).to_pylist()
    return (
        tables,
        last.get(DIGEST_KEY, ""),
        {(r["source_system"], r["batch_id"], r["file_sha256"]) for r in rows},
    )


def _diff_files(plan: Plan, staged: set[tuple[str, str, str]]) -> str:
    """Sets plan.new and the mode from the current files against the staged ones; returns the reason."""
    current = {(s, r["batch_id"], r["file_sha256"]): r for s, rows in plan.current.items() for r in rows}
    if staged - current.keys():
        return "a staged file is no longer current (a new version of it, an erasure or a repair)"
    for source, batch, _sha in staged:
        plan.staged_batches.setdefault(source, set()).add(batch)
    new = [key for key in current if key not in staged]
    if not new:
        plan.mode = "unchanged"
        return "no new raw batch since the last staging"
    if any(batch in plan.staged_batches.get(source, ()) for source, batch, _ in new):
        return "a new file joined a batch already staged"
    if _sorts_before_staged(plan, current, new):
        return "a new batch sorts before a staged one (its versions would lose to older ones)"
    share = sum(current[k]["rows_stored"] or 0 for k in new) / max(
        1, sum(r["rows_stored"] or 0 for r in current.values())
    )
    if share > FULL_BUILD_SHARE:
        return f"new raw rows are {share:.0%} of all, over the {FULL_BUILD_SHARE:.0%} threshold"
    for source, batch, sha in new:
        plan.new.setdefault(source, []).append(current[(source, batch, sha)])
    plan.mode = "incremental"
    return (
        f"{len(new)} new file(s) in {len({(s, b) for s, b, _ in new})} new batch(es), {share:.1%} of raw rows"
    )


def _sorts_before_staged(plan: Plan, current: dict, new: list) -> bool:
    for source, staged in plan.staged_batches.items():
        last_staged = max(
            (r["ingested_at"] for (s, b, _), r in current.items() if s == source and b in staged)
        )
        if any(current[k]["ingested_at"] <= last_staged for k in new if k[0] == source):
            return True
    return False


def staging_path(lake_dir, name: str):
    """The Delta table staging/<name> of the lake."""
    return lake.table_path(lake_dir, "staging", name)


NO_TOUCHED = (
    "SELECT NULL::VARCHAR AS staging_table, NULL::VARCHAR AS source_system, NULL::VARCHAR AS record_key, "
    "NULL::VARCHAR AS source_person_id, NULL::VARCHAR AS change, NULL::VARCHAR AS _source_file, "
    "NULL::BIGINT AS _line_number WHERE false"
)


def write_touched_rows(lake_dir, plan: Plan, rows) -> None:
    """staging/_touched replaced by `rows` (empty after a full build: it touched everything)."""
    lake.write(
        staging_path(lake_dir, TOUCHED),
        rows,
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=plan.commit(TOUCHED),
    )


def write_state(con, lake_dir, plan: Plan, empty_touched: bool = False) -> None:
    """The last write of a run: the staged files, committed with every table's run id (a full build
    first empties _touched: it touched everything)."""
    if empty_touched:
        write_touched_rows(lake_dir, plan, con.sql(NO_TOUCHED).to_arrow_table())
    rows = [
        {
            "source_system": s,
            "batch_id": r["batch_id"],
            "file_sha256": r["file_sha256"],
            "staging_mode": plan.mode,
        }
        for s, current in plan.current.items()
        for r in current
    ]
    schema = pa.schema(
        [(n, pa.string()) for n in ("source_system", "batch_id", "file_sha256", "staging_mode")]
    )
    lake.write(
        staging_path(lake_dir, STAGED_FILES),
        pa.Table.from_pylist(rows, schema=schema),
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=plan.commit(STAGED_FILES),
    )
