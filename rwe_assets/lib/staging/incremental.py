"""Incremental staging (issue 26): a run that finds only new raw batches stages the records of those
batches and the earlier versions they touch, and merges the result into the staging tables by record
key; anything else is a full build (docs/operations.md, "Incremental refresh").

State. Every Delta commit a staging run makes carries the run's id as commit metadata (STATE_KEY),
and `staging/_staged_files`, written last, lists the raw files (source, batch, sha256) that run
staged, with the digest of what else staging reads (DIGEST_KEY: its code and SQL, the registry, the
tombstones). A table whose last commit names another run was left behind by an interrupted run, or
written by another step: the next run is a full build. So a crash between two table commits never
passes for a good state, and each table stays readable at its last commit.

Scope. Per source with new batches, the candidates are the new batches' rows (the profile SQL over
their files only) plus the *prior rows* in scope: the staged rows, and the rows quarantined only for a
missing person, visit or event (kept whole in `_pending_<table>`: a later batch may bring the parent),
that are
- of a record (record_key before '#') a new row belongs to: its versions and its other rows;
- of a person a new row names (a snapshot batch retires what it leaves out, per person and entity;
  a new or corrected person can orphan or adopt rows);
- children of a visit or event in scope (a withdrawn visit orphans its events).
The record lifecycle then runs unchanged over them, except that only a new batch can be the one that
retires what it leaves out (lifecycle.retire_absent): the staged batches' retirements are in the prior
state already. What a full build of all batches would stage for these records, this stages; rows out
of scope keep their staged state, which nothing in the new batches can change.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import CALL_ENTITY as GENOMICS_CALL_ENTITY
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging import deid
from rwe_assets.lib.staging.lifecycle import (
    create_batch_info,
    create_snapshot_cover,
    inherit_event_keys,
    number_natural_key_collisions,
)
from rwe_assets.lib.staging.model import BY_NAME, TABLES

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
_CODE = ("staging/*.py", "sql/staging/**/*", "sources.py", "raw_ingest/model.py")
OUT_OF_STEP = "staging tables out of step (an interrupted run, or a table written by another step)"
PARENT_COLUMNS = {"visit_key": "visit", "event_key": "event"}


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
    files = lake.open_table(_path(lake_dir, STAGED_FILES))
    if files is None:
        return None
    last = files.history(1)[0]
    tables = json.loads(last.get(TABLES_KEY) or "{}")
    for name in state_tables():
        table = lake.open_table(_path(lake_dir, name))
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


# ---- scope: prior rows of the records and persons the new rows touch -----------------------------


def register_prior(con: duckdb.DuckDBPyConnection, lake_dir) -> None:
    """Views prior_<table>: the staged rows plus the pending ones (flag _pending), as last written."""
    for table in TABLES:
        columns = ", ".join(f'"{n}"' for n in table.column_names)
        lake.register_parquet_view(con, f"staged_prior_{table.name}", _path(lake_dir, table.name))
        parts = [f"SELECT {columns}, false AS _pending FROM staged_prior_{table.name}"]
        if table.name in pending_tables():
            lake.register_parquet_view(
                con, f"pending_prior_{table.name}", _path(lake_dir, PENDING_PREFIX + table.name)
            )
            parts.append(f"SELECT {columns}, true AS _pending FROM pending_prior_{table.name}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW prior_{table.name} AS {' UNION ALL '.join(parts)}")
    lake.register_parquet_view(con, "quarantine_prior", _path(lake_dir, "_quarantine"))


def select_scope(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Tables scope_<table>: the prior rows of `source` in scope (module docstring), from the new
    candidates in cand_<table> (their natural keys already numbered)."""
    persons = [t.name for t in TABLES if "source_person_id" in t.column_names]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE touched_records AS "
        + " UNION ".join(
            f"SELECT DISTINCT '{t.name}' AS tbl, split_part(record_key, '#', 1) AS record FROM cand_{t.name} "
            "WHERE record_key IS NOT NULL"
            for t in TABLES
        )
    )
    same_record = "split_part(o.record_key, '#', 1) IN (SELECT record FROM touched_records WHERE tbl = '{t}')"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE touched_persons AS "
        + " UNION ".join(
            f"SELECT source_person_id FROM cand_{t} WHERE source_person_id IS NOT NULL UNION "
            f"SELECT o.source_person_id FROM prior_{t} o WHERE o.source_system = $source "
            f"AND {same_record.format(t=t)}"
            for t in persons
        ),
        {"source": source},
    )
    for table in TABLES:
        conditions = [same_record.format(t=table.name)]
        if table.name in persons:
            conditions.append("o.source_person_id IN (SELECT source_person_id FROM touched_persons)")
        for column, parent in PARENT_COLUMNS.items():
            if column in table.column_names:
                conditions.append(
                    f"o.{column} IN (SELECT record_key FROM scope_{parent} "
                    f"UNION ALL SELECT record_key FROM cand_{parent})"
                )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE scope_{table.name} AS SELECT * FROM prior_{table.name} o "
            f"WHERE o.source_system = $source AND ({' OR '.join(conditions)})",
            {"source": source},
        )


def add_scope_to_candidates(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """The prior rows in scope become candidates again: valid, their keys final (not natural)."""
    for name in tables:
        columns = ", ".join(f'"{n}"' for n in BY_NAME[name].column_names)
        con.execute(f"INSERT INTO cand_{name} SELECT {columns}, NULL, NULL, false FROM scope_{name}")


def create_reference_view(con: duckdb.DuckDBPyConnection, table: str, source: str) -> None:
    """View ref_<table>: what a reference check finds staged, the candidates staged now plus the prior
    staged rows of `source` out of scope (which this run leaves as they are)."""
    columns = "source_system, record_key, source_person_id"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW ref_{table} AS
        SELECT {columns} FROM staged_{table}
        UNION ALL
        SELECT {columns} FROM staged_prior_{table} o
        WHERE o.source_system = {quote_literal(source)}
          AND o.record_key NOT IN (SELECT record_key FROM scope_{table} WHERE NOT _pending)
        """
    )


# ---- changes: what this run writes ---------------------------------------------------------------


def change_queries(table: str) -> dict[str, str]:
    """The SQL of one source's changes to `table` (after the lifecycle ran over its candidates):
    'upsert' the staged rows that are new or differ from their prior version, 'delete' the prior
    staged keys no longer staged (with their person, for the touched set)."""
    columns = ", ".join(f'"{n}"' for n in BY_NAME[table].column_names)
    person = "source_person_id" if "source_person_id" in BY_NAME[table].column_names else "NULL"
    return {
        "upsert": f"SELECT {columns} FROM staged_{table} EXCEPT ALL SELECT {columns} FROM scope_{table} WHERE NOT _pending",
        "delete": f"SELECT source_system, record_key, {person} AS source_person_id, _source_file, _line_number "
        f"FROM scope_{table} s "
        f"WHERE NOT _pending AND (source_system, record_key) NOT IN (SELECT source_system, record_key FROM staged_{table})",
    }


def pending_changes(table: str, pending_sql: str) -> dict[str, str]:
    """The changes to _pending_<table>: rows newly waiting for a parent, and prior pending rows in
    scope that no longer wait (or wait for another reason: they are inserted again)."""
    columns = ", ".join(f'"{n}"' for n in BY_NAME[table].column_names)
    return {
        "upsert": f"SELECT {columns} FROM ({pending_sql}) EXCEPT ALL SELECT {columns} FROM scope_{table} WHERE _pending",
        "delete": f"SELECT {columns} FROM scope_{table} WHERE _pending EXCEPT ALL SELECT {columns} FROM ({pending_sql})",
    }


def released_quarantine_sql() -> str:
    """Quarantine rows of the prior pending rows in scope: they were re-checked, so the run's own
    outcome for them replaces these (deleted unless the same row is quarantined again)."""
    return " UNION ALL ".join(
        f"SELECT '{t}' AS staging_table, source_system, record_key, _source_entity, _source_file, _line_number "
        f"FROM scope_{t} WHERE _pending"
        for t in pending_tables()
    )


def merge_table(lake_dir, name: str, upserts, deletes, plan: Plan, key: list[str]) -> None:
    """One Delta commit on staging/<name>: rows of `deletes` (Arrow, by key) removed, rows of
    `upserts` updated by key or inserted (the two share no key); nothing written when both are empty."""
    if upserts.num_rows == 0 and deletes.num_rows == 0:
        return
    source = pa.concat_tables(
        [
            upserts.append_column("_delete", pa.array([False] * upserts.num_rows, pa.bool_())),
            _keys_only(deletes, upserts.schema, key).append_column(
                "_delete", pa.array([True] * deletes.num_rows, pa.bool_())
            ),
        ]
    )
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    merger = lake.open_table(_path(lake_dir, name)).merge(
        source, on, source_alias="s", target_alias="t", commit_properties=plan.commit(name)
    )
    (
        merger.when_matched_delete("s._delete")
        .when_matched_update_all("NOT s._delete", except_cols=["_delete"])
        .when_not_matched_insert_all("NOT s._delete", except_cols=["_delete"])
        .execute()
    )


def _keys_only(deletes, schema, key: list[str]):
    """`deletes` with the columns of `schema`: its key columns, nulls for the rest."""
    return pa.table(
        {
            f.name: deletes[f.name].cast(f.type) if f.name in key else pa.nulls(deletes.num_rows, f.type)
            for f in schema
        }
    )


def _path(lake_dir, name: str):
    return lake.table_path(lake_dir, "staging", name)


# ---- the run ------------------------------------------------------------------------------------


def build_changes(
    con: duckdb.DuckDBPyConnection, lake_dir, registry: SourceRegistry, plan: Plan, scratch: Path
):
    """An incremental (or unchanged: nothing to write) run: stage each source's new batches with their
    scope, merge the changes, then account for every table as written. Returns the StagingReport."""
    from rwe_assets.lib.staging import accounting, build

    sources = [s for s in registry if s.name in plan.new]
    touched = {}
    if sources:
        register_prior(con, lake_dir)
        for number, source in enumerate(sources):
            _stage_changes(con, lake_dir, source, plan, scratch, number)
        build._drop_candidate_tables(con)
        touched = _write_changes(con, lake_dir, scratch, plan)
    _count_raw(con, lake_dir, registry, plan, {s.name for s in sources})
    if sources:
        lake.write(
            _path(lake_dir, build.NOT_MODELLED),
            con.sql("SELECT * FROM not_modelled ORDER BY ALL").to_arrow_table(),
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=plan.commit(build.NOT_MODELLED),
        )
        write_state(con, lake_dir, plan)
    accounting.count_tables(con, lake_dir)
    return replace(accounting.report(con, lake_dir, plan.mode, plan.reason), touched=touched)


def _stage_changes(con, lake_dir, source, plan: Plan, scratch: Path, number: int) -> None:
    """One source: its new batches' candidates, the prior rows in their scope, the lifecycle and
    references as in a full build; the changes go to Parquet pieces in `scratch`."""
    from rwe_assets.lib.staging import build

    build._create_candidate_tables(con)
    build._stage_source(con, lake_dir, source, plan.new[source.name])
    tombstone.refuse_erased(con, lake_dir)
    build.redact_identifying_answers(con)
    for table in TABLES:  # the new rows' final keys, before the scope is looked up by them
        if table.name == "cost":
            inherit_event_keys(con)
        number_natural_key_collisions(con, table.name, ", ".join(f'"{n}"' for n, _ in table.columns))
    select_scope(con, source.name)
    add_scope_to_candidates(con, [t.name for t in TABLES if t.name != "note"])
    _redact_new_notes(con, source.name)
    add_scope_to_candidates(con, ["note"])  # redacted when first staged
    create_batch_info(
        con, SourceRegistry((source,)), {source.name: plan.current[source.name]}, plan.staged_batches
    )
    create_snapshot_cover(con, [t.name for t in TABLES if "source_person_id" in t.column_names])

    def after(table: str) -> None:
        if table in ("person_source", "visit", "event"):
            create_reference_view(con, table, source.name)

    build.resolve_tables(con, parents="ref", after=after)
    _write_change_pieces(con, scratch, number)


def _redact_new_notes(con, source: str) -> None:
    """De-identify the new notes with their persons' identifiers (new and prior rows in scope: every
    person of a new note is) and the facility names of every care site of the source."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW deid_sites AS SELECT care_site_name FROM cand_care_site "
        f"UNION ALL SELECT care_site_name FROM staged_prior_care_site WHERE source_system = {quote_literal(source)}"
    )
    deid.redact_note_table(con, "cand_note", "cand_person_pii", "deid_sites")


def _write_change_pieces(con, scratch: Path, number: int) -> None:
    from rwe_assets.lib.staging import build

    queries = {(t.name, kind): sql for t in TABLES for kind, sql in change_queries(t.name).items()}
    for table in pending_tables():
        for kind, sql in pending_changes(table, build.pending_sql(table)).items():
            queries[(PENDING_PREFIX + table, kind)] = sql
    quarantined = build._rejected_sql("quarantined")
    released = f"""
        SELECT q.* FROM quarantine_prior q JOIN ({released_quarantine_sql()}) r
        USING (staging_table, source_system, record_key, _source_entity, _source_file, _line_number)
    """
    queries[(build.QUARANTINE, "upsert")] = f"{quarantined} EXCEPT ALL {released}"
    queries[(build.QUARANTINE, "delete")] = f"{released} EXCEPT ALL ({quarantined})"
    queries[(build.MERGED, "upsert")] = build._rejected_sql("merged")
    queries[(build.RETIRED, "upsert")] = build._rejected_sql("retired")
    for (name, kind), sql in queries.items():
        (scratch / name).mkdir(exist_ok=True)
        con.execute(
            f"COPY ({sql}) TO {quote_literal(str(scratch / name / f'{kind}_{number}.parquet'))} (FORMAT parquet)"
        )


MERGE_KEYS = {
    "_quarantine": [
        "staging_table",
        "source_system",
        "record_key",
        "_source_file",
        "_line_number",
        "reason_code",
    ],
    **{
        PENDING_PREFIX + t: ["source_system", "record_key", "_source_file", "_line_number"]
        for t in pending_tables()
    },
}


def _write_changes(con, lake_dir, scratch: Path, plan: Plan) -> dict[str, int]:
    """Merge each table's changes in one commit; returns the rows changed per canonical table."""
    from rwe_assets.lib.staging import build

    touched = {}
    for name in [*(t.name for t in TABLES), build.QUARANTINE, build.MERGED, build.RETIRED, *MERGE_KEYS]:
        if not (scratch / name).is_dir():
            continue
        upserts, deletes = (_pieces(con, scratch / name, kind) for kind in ("upsert", "delete"))
        if name in (build.MERGED, build.RETIRED):
            if upserts.num_rows:  # outcomes of rows that were staged or pending: added, never replaced
                lake.write(_path(lake_dir, name), upserts, mode="append", commit_properties=plan.commit(name))
            continue
        merge_table(
            lake_dir, name, upserts, deletes, plan, MERGE_KEYS.get(name, ["source_system", "record_key"])
        )
        if name in BY_NAME:
            touched[name] = upserts.num_rows + deletes.num_rows
    _write_touched(con, lake_dir, scratch, plan)
    return touched


def _pieces(con, folder: Path, kind: str):
    pieces = ", ".join(quote_literal(str(p)) for p in sorted(folder.glob(f"{kind}_*.parquet")))
    if not pieces:
        return con.sql("SELECT 1 AS none WHERE false").to_arrow_table()
    return con.sql(f"SELECT * FROM read_parquet([{pieces}])").to_arrow_table()


def _write_touched(con, lake_dir, scratch: Path, plan: Plan) -> None:
    """staging/_touched: the rows of the canonical tables this run inserted, changed or removed, with
    the provenance of the row written or removed (an erasure reads it as it reads every staging table)."""
    parts = []
    for table in TABLES:
        person = "source_person_id" if "source_person_id" in table.column_names else "NULL"
        for kind in ("upsert", "delete"):
            pieces = sorted((scratch / table.name).glob(f"{kind}_*.parquet"))
            if pieces:
                files = ", ".join(quote_literal(str(p)) for p in pieces)
                parts.append(
                    f"SELECT '{table.name}' AS staging_table, source_system, record_key, "
                    f"{person}::VARCHAR AS source_person_id, '{kind}' AS change, _source_file, _line_number "
                    f"FROM read_parquet([{files}])"
                )
    _write_touched_rows(lake_dir, plan, con.sql(" UNION ALL ".join(parts) or _NO_TOUCHED).to_arrow_table())


_NO_TOUCHED = (
    "SELECT NULL::VARCHAR AS staging_table, NULL::VARCHAR AS source_system, NULL::VARCHAR AS record_key, "
    "NULL::VARCHAR AS source_person_id, NULL::VARCHAR AS change, NULL::VARCHAR AS _source_file, "
    "NULL::BIGINT AS _line_number WHERE false"
)


def _write_touched_rows(lake_dir, plan: Plan, rows) -> None:
    lake.write(
        _path(lake_dir, TOUCHED),
        rows,
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=plan.commit(TOUCHED),
    )


def write_state(con, lake_dir, plan: Plan, empty_touched: bool = False) -> None:
    """The last write of a run: the staged files, committed with every table's run id (a full build
    first empties _touched: it touched everything)."""
    if empty_touched:
        _write_touched_rows(lake_dir, plan, con.sql(_NO_TOUCHED).to_arrow_table())
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
        _path(lake_dir, STAGED_FILES),
        pa.Table.from_pylist(rows, schema=schema),
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=plan.commit(STAGED_FILES),
    )


def _count_raw(con, lake_dir, registry: SourceRegistry, plan: Plan, changed: set[str]) -> None:
    """raw_counts of every staged source over its current files (what the written tables account for),
    and not_modelled: recounted for the changed sources, as last written for the others."""
    from rwe_assets.lib.staging import build

    con.execute("DELETE FROM not_modelled")
    if lake.register_parquet_view(con, "not_modelled_prior", _path(lake_dir, build.NOT_MODELLED)):
        con.execute("INSERT INTO not_modelled SELECT * FROM not_modelled_prior")
    con.execute("DELETE FROM not_modelled WHERE source_system IN (SELECT unnest($s))", {"s": sorted(changed)})
    for source in (s for s in registry if s.staging_profile):
        shas = sorted(r["file_sha256"] for r in plan.current[source.name])
        profile = build.SQL_DIR / source.staging_profile
        for entity in source.entity_names:
            build._register_raw(con, lake_dir, source, entity, shas)
        for table in TABLES:
            for sql_file in build.entity_sql_files(profile, table.name):
                n = con.execute(f"SELECT count(*) FROM raw_{sql_file.stem}").fetchone()[0]
                con.execute(
                    "INSERT INTO raw_counts VALUES (?, ?, ?, ?)", [table.name, source.name, sql_file.stem, n]
                )
        if source.name in changed:
            staged_elsewhere = {GENOMICS_CALL_ENTITY} if source.kind == "genomics" else set()
            build._count_not_modelled(
                con, source, {f.stem for f in profile.glob("*/*.sql")} | staged_elsewhere
            )


# ---- the proof: staged tables as digests ---------------------------------------------------------


def staged_digests(lake_dir, exclude: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Per canonical staging table: (rows, md5 over its rows sorted), columns in `exclude` left out
    (an ingest time differs between two lakes landed apart). Equal digests: the same rows."""
    con = duckdb.connect()
    digests = {}
    for table in TABLES:
        columns = [n for n in table.column_names if n not in exclude]
        if not lake.register_parquet_view(con, "t", _path(lake_dir, table.name)):
            digests[table.name] = (0, "")
            continue
        row = ", ".join(f'"{c}"' for c in columns)
        digests[table.name] = con.execute(
            f"SELECT count(*), coalesce(md5(string_agg(h, ',' ORDER BY h)), '') "
            f"FROM (SELECT md5(CAST(ROW({row}) AS VARCHAR)) AS h FROM t)"
        ).fetchone()
    con.close()
    return digests
