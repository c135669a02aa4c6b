"""Rerun a failed CDM build from the step that failed (issue 28).

The steps (lib/cdm/steps.py) hand each other temporary tables and views, which live in the build's
connection and die with it. Keeping them as tables of the build file after every step would write
every intermediate to disk on every build; instead, when a step raises, the build undoes that step
(`StepGuard`), saves the connection's temporary tables and views to a sidecar DuckDB file
(`warehouse/build.duckdb.resume`) and records there the steps that finished, the Python state they
handed on and the key of the inputs they ran on, and keeps its partial database. The next build whose
key is the same (same input fingerprint, lib/cdm/reuse.py: staged lake versions, vocabulary,
priorities, code; same plan and same last build) registers its inputs, restores the saved session,
deletes the record and starts at the failed step; any other build discards both files and starts
over. Registered data (Arrow: inputs on object storage) is saved by name only: the build's
registration must make it again.

Undoing the failed step: a fix-up (a step changing a table an earlier step wrote: `steps.fix_ups`)
runs in a transaction and is rolled back; any other step only fills tables no earlier step wrote, so
its undo drops the tables it created and empties the declared tables it filled. Temporary objects it
created are dropped and views it replaced are put back. A killed process saves nothing (its
intermediates were in its memory): the next build starts over, also after a killed resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from rwe_assets.lib.cdm import intermediates
from rwe_assets.lib.cdm.results import CdmReconciliation
from rwe_assets.lib.cdm.steps import Step
from rwe_assets.lib.cdm.visits import RollupResult
from rwe_assets.lib.genomics.cdm import GenomicsCdmReport
from rwe_assets.lib.publish import BUILD
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

WORK, SCRATCH = f"{BUILD}.partial", f"{BUILD}.scratch"  # the full build's file; the incremental's scratch
SIDECAR = f"{BUILD}.resume"
_SESSION = "resume_session"  # the sidecar's name while attached to the build's connection


def key_of(fingerprint: str | None, *parts: object) -> str | None:
    """The key a resumable build is recorded under: the input fingerprint and what else decides the
    steps' output (the plan, the last build); None when the inputs cannot be fingerprinted."""
    if fingerprint is None:
        return None
    return hashlib.sha256(json.dumps([fingerprint, *parts], default=str).encode()).hexdigest()


@dataclass
class Record:
    """What a failed build left to resume from."""

    key: str
    finished: list[str]
    failed: str
    hand_on: dict = field(default_factory=dict)  # the build's Python state at the failed step's start


@dataclass
class Progress:
    """The steps this build finished, and the record of a failed build it resumes."""

    warehouse_dir: Path
    key: str | None
    record: Record | None = None
    finished: list[str] = field(default_factory=list)
    resumed_from: str | None = None
    view_sql: dict[int, str] = field(default_factory=dict)  # StepGuard's cache of view texts

    @classmethod
    def start(cls, warehouse_dir: Path, key: str | None, incremental: bool) -> Progress:
        """The record of a failed build of the same key whose database is still there; otherwise a
        fresh start: a failed or killed build's files and logs go (the new file is a copy of the same
        vocabulary store, so DuckDB would take an old log for its own and replay its rows)."""
        target = warehouse_dir / (SCRATCH if incremental else WORK)
        record = read(warehouse_dir, key) if target.is_file() else None
        if record is None:
            remove(warehouse_dir / WORK, warehouse_dir / SCRATCH)
            discard(warehouse_dir)
            return cls(warehouse_dir, key)
        return cls(warehouse_dir, key, record, list(record.finished))

    def failed(self, con, step: str, hand_on: dict, undone: bool) -> bool:
        """Record the failed `step` for a rerun (with `con`'s session); False if it cannot be resumed."""
        if self.key is None or not undone:
            discard(self.warehouse_dir)
            return False
        try:
            save(con, self.warehouse_dir, Record(self.key, list(self.finished), step, hand_on))
        except (duckdb.Error, OSError):
            discard(self.warehouse_dir)
            return False
        return True

    def resume(self, state, register: Callable, reads: set[str]) -> None:
        """Into the build's `state`: its inputs registered (`register`), then the failed build's
        temporary tables and views and its Python state. `reads`: what the steps left to run read."""
        assert self.record is not None
        try:
            register(state)
            restore(state.con, self.warehouse_dir, reads)
            restore_hand_on(state, self.record.hand_on)
        finally:
            # Used once: the steps after this fill the partial database, so a record left behind would
            # have the next build redo them over their own rows if this one dies without recording
            # (killed, BaseException, a failure after the steps); a failing step records afresh. The
            # intermediates' files stay: the restored views read them.
            remove(self.warehouse_dir / SIDECAR)
        self.resumed_from = self.record.failed
        state.log(
            f"CDM build: resumed at step '{self.record.failed}' "
            f"({len(self.record.finished)} steps kept from a failed build of the same inputs)"
        )


def hand_on(state) -> dict:
    """What the build's steps hand each other in Python (not in the database), as JSON values."""
    return {
        "rollup": asdict(state.rollup) if state.rollup else None,
        "genomics": asdict(state.genomics) if state.genomics else None,
        "unmapped": state.unmapped,
        "vocabulary_warning": state.vocabulary_warning,
        "reconciliation": [asdict(r) for r in state.reconciliation],
        "genomics_person_map": state.genomics_person_map,
    }


def restore_hand_on(state, saved: dict) -> None:
    state.rollup = RollupResult(**saved["rollup"]) if saved["rollup"] else None
    state.genomics = GenomicsCdmReport(**saved["genomics"]) if saved["genomics"] else None
    state.unmapped, state.vocabulary_warning = saved["unmapped"], saved["vocabulary_warning"]
    state.reconciliation = tuple(
        CdmReconciliation(**{**r, "excluded_reasons": tuple(map(tuple, r["excluded_reasons"]))})
        for r in saved["reconciliation"]
    )
    state.genomics_person_map = saved["genomics_person_map"]


def remove(*databases: Path) -> None:
    """Database files and their write-ahead logs."""
    for database in databases:
        for leftover in (database, database.with_name(database.name + ".wal")):
            leftover.unlink(missing_ok=True)


def read(warehouse_dir: Path, key: str | None) -> Record | None:
    """The record a failed build of the same key left, or None."""
    path = warehouse_dir / SIDECAR
    if key is None or not path.is_file():
        return None
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            row = con.execute("SELECT key, finished, failed, hand_on FROM meta.record").fetchone()
    except duckdb.Error:  # unreadable or written halfway: not a record
        return None
    if row is None or row[0] != key:
        return None
    return Record(row[0], json.loads(row[1]), row[2], json.loads(row[3]))


def discard(warehouse_dir: Path) -> None:
    """The record and the files of the intermediates its saved views read."""
    remove(warehouse_dir / SIDECAR)
    intermediates.clear(warehouse_dir)


def save(con: duckdb.DuckDBPyConnection | None, warehouse_dir: Path, record: Record) -> None:
    """Write the sidecar: `con`'s temporary tables and views (none without a connection), then the
    record, last, so a sidecar without one is never taken for a record. Views of stored intermediates
    (lib/cdm/intermediates.py) are saved by their SQL: their files stay where they are."""
    remove(warehouse_dir / SIDECAR)
    path = warehouse_dir / SIDECAR
    if con is not None:
        con.execute(f"ATTACH {quote_literal(str(path))} AS {_SESSION}")
        try:
            _save_session(con)
        finally:
            con.execute(f"DETACH {_SESSION}")
    with duckdb.connect(str(path)) as side:
        side.execute("CREATE SCHEMA meta")
        side.execute(
            "CREATE TABLE meta.record (key VARCHAR, finished VARCHAR, failed VARCHAR, hand_on VARCHAR)"
        )
        side.execute(
            "INSERT INTO meta.record VALUES (?, ?, ?, ?)",
            [record.key, json.dumps(record.finished), record.failed, json.dumps(record.hand_on)],
        )


def _save_session(con) -> None:
    """The temporary tables and views; of registered data (Arrow, a view without SQL) only the name,
    to check on a resume that the build's `register` made it again."""
    con.execute(f"CREATE TABLE {_SESSION}.main.saved_view (name VARCHAR, sql VARCHAR)")
    for name in _catalog(con)[1]:
        con.execute(f"CREATE TABLE {_SESSION}.main.{_q(name)} AS SELECT * FROM temp.main.{_q(name)}")
    views = [(name, sql) for name, _, sql in _views(con)]  # sql '': registered data
    if views:
        con.executemany(f"INSERT INTO {_SESSION}.main.saved_view VALUES (?, ?)", views)


def restore(con: duckdb.DuckDBPyConnection, warehouse_dir: Path, reads: set[str]) -> None:
    """The saved temporary tables and views into `con` (whose inputs are registered already); the
    registered data of those that `reads` names must be there again."""
    con.execute(f"ATTACH {quote_literal(str(warehouse_dir / SIDECAR))} AS {_SESSION} (READ_ONLY)")
    try:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
            "AND table_name <> 'saved_view'",
            [_SESSION],
        ).fetchall()
        for (name,) in tables:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_q(name)} AS SELECT * FROM {_SESSION}.main.{_q(name)}"
            )
        views = dict(con.execute(f"SELECT name, sql FROM {_SESSION}.main.saved_view").fetchall())
    finally:
        con.execute(f"DETACH {_SESSION}")
    _create_views(con, {name: sql for name, sql in views.items() if sql})
    _check_registered(con, {name for name, sql in views.items() if not sql} & reads)


def _check_registered(con, registered: set[str]) -> None:
    """Data the failed build had registered (no SQL to save it by) that a step left to run reads must
    be registered again by the build's `register`, or that step would fail on every resume."""
    present = {name for name, _, _ in _views(con)}
    missing = sorted(registered - present)
    if missing:
        raise RuntimeError(f"saved build session: registered inputs {missing} were not registered again")


def _create_views(con, views: dict[str, str]) -> None:
    """Views in an order their dependencies allow (DuckDB binds a view when it is created)."""
    pending = dict(views)
    while pending:
        failed: dict[str, str] = {}
        for name, sql in pending.items():
            try:
                con.execute(_replacing(sql))
            except duckdb.CatalogException:
                failed[name] = sql
        if len(failed) == len(pending):
            raise RuntimeError(f"saved build session: views {sorted(failed)} cannot be recreated")
        pending = failed


def _replacing(view_sql: str) -> str:
    return view_sql.replace("CREATE TEMP VIEW", "CREATE OR REPLACE TEMP VIEW", 1)


class StepGuard:
    """Around one step: notes what exists when it starts, and on an error puts the database back as
    it was then (`undone` says whether that worked, i.e. whether the build may be resumed). The
    catalog is read in two short queries per step (about 1.5 ms); the text of a view only once per
    view, into `view_sql` (view oid -> its SQL, '' for registered data), which the caller keeps."""

    def __init__(self, con: duckdb.DuckDBPyConnection, step: Step, fix_up: bool, view_sql: dict[int, str]):
        self.con, self.step, self.fix_up, self.view_sql = con, step, fix_up, view_sql
        self.undone = False

    def __enter__(self) -> StepGuard:
        con = self.con
        self.tables, self.temp_tables = _catalog(con)
        self.views = _view_oids(con, self.view_sql)
        self.databases = _databases(con)
        declared = [t for t in self.step.writes if "." in t and t in self.tables]
        self.emptied = [t for t in declared if not self.fix_up and _rows(con, t) == 0]
        self.undoable = self.fix_up or len(self.emptied) == len(declared)
        if self.fix_up:
            con.begin()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            if self.fix_up:
                self.con.commit()
            return
        try:
            self._undo()
            self.undone = self.undoable
        except Exception:  # the connection may be unusable (a fatal error): start over, and the
            self.undone = False  # step's own error is the one raised

    def _undo(self) -> None:
        con = self.con
        if self.fix_up:
            con.rollback()
        for name in _databases(con) - self.databases:
            con.execute(f"DETACH {_q(name)}")
        tables, temp_tables = _catalog(con)
        for name in sorted(tables - self.tables):
            con.execute(f"DROP TABLE IF EXISTS {'.'.join(map(_q, name.split('.')))}")
        for table in self.emptied:
            con.execute(f"DELETE FROM {table}")
        if set(self.temp_tables) - set(temp_tables):
            self.undoable = False  # dropped: its rows are gone
        for name, oid in temp_tables.items():
            if name not in self.temp_tables:
                con.execute(f"DROP TABLE IF EXISTS temp.main.{_q(name)}")
            elif oid != self.temp_tables[name]:
                self.undoable = False  # replaced: its earlier rows are gone
        self._undo_views()

    def _undo_views(self) -> None:
        """Views the step created go, views it replaced come back (registered data it replaced by a
        view goes: the rerun registers its inputs again)."""
        for name, oid in _view_oids(self.con, self.view_sql).items():
            before = self.views.get(name)
            if before == oid or (before is None and not self.view_sql[oid]):
                continue  # unchanged, or data the step registered
            if before is not None and self.view_sql[before]:
                self.con.execute(_replacing(self.view_sql[before]))
            else:
                self.con.execute(f"DROP VIEW IF EXISTS temp.main.{_q(name)}")


def _catalog(con) -> tuple[set[str], dict[str, int]]:
    """(the build file's tables as schema.table, the temporary tables by name with their oids)."""
    rows = con.execute(
        "SELECT database_name = current_database(), schema_name, table_name, temporary, table_oid "
        "FROM duckdb_tables()"
    ).fetchall()
    tables = {f"{schema}.{table}" for here, schema, table, temporary, _ in rows if here and not temporary}
    return tables, {table: oid for _, _, table, temporary, oid in rows if temporary}


def _view_oids(con, view_sql: dict[int, str]) -> dict[str, int]:
    """The temporary views by name with their oids; the SQL of each new one added to `view_sql`."""
    views = dict(
        con.execute(
            "SELECT view_name, view_oid FROM duckdb_views() WHERE temporary AND NOT internal"
        ).fetchall()
    )
    if set(views.values()) - view_sql.keys():
        view_sql.update({oid: sql for name, oid, sql in _views(con)})
    return views


def _views(con) -> list[tuple[str, int, str]]:
    rows = con.execute(
        "SELECT view_name, view_oid, sql FROM duckdb_views() WHERE temporary AND NOT internal"
    ).fetchall()
    return [(name, oid, sql or "") for name, oid, sql in rows]


def _databases(con) -> set[str]:
    return {name for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}


def _rows(con, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _q(name: str) -> str:
    return quote_identifier(name)
