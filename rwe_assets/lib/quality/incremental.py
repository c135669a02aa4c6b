"""DQD checks after an incremental CDM build (issue 26): a per-person check counts the rebuilt persons'
rows and merges them with the last run's counts; every other check runs whole.

An incremental build (lib/cdm/incremental.py) replaces every row of the persons it rebuilds in the
person-scoped tables and leaves the other persons' rows as they were. It keeps the rows it replaced
in a side file (REPLACED_FILE beside build.duckdb) and marks the build with the side file's token and
the fingerprint of the build it started from (BUILD_MARK). A check whose counts are sums over persons
of the rows it reads then has, on the new build:

    last run's count - the count over the replaced rows + the count over the rebuilt persons' rows

which is what a whole run counts. `merged_outcomes` does that for a check when all of this holds:

- the last DQD run recorded (RUN_TABLE) checked the build this one started from, and ran the check
  with the same query (values inlined: a bound read from today's date that moved runs whole);
- its type counts rows (or persons) one at a time, reading only the table checked, the vocabulary
  (unchanged: a vocabulary change is a full build) and the same person's rows (PER_PERSON, and the
  foreign keys and date orders of `_reads`);
- every table it reads besides the vocabulary is one the build replaces per person, and its field is
  not an id the build numbers again over everyone (observation periods, eras).

Primary keys, foreign keys to visits, providers and care sites, visit windows, distinct source
values and the tables without person_id run whole, as do all checks when any condition above fails
(the run's mode and reason are recorded in RUN_TABLE).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb

from rwe_assets.lib.cdm.incremental import BUILD_MARK, RENUMBERED, REPLACED_FILE, sliced_tables
from rwe_assets.lib.cdm.reuse import FINGERPRINT_TABLE
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.dqd_spec import DqdCheck
from rwe_assets.lib.quality.catalogue import check_id
from rwe_assets.lib.quality.database import Database, NotApplicable, quote_qualified
from rwe_assets.lib.quality.planner import Plan, plan_check
from rwe_assets.lib.quality.results import RESULTS_TABLE, Outcome
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

RUN_TABLE = "dq_run_build"
"""Per DQD run: the fingerprint of the build it checked, how it ran (whole or per person) and why."""
REPLACED = "dq_replaced"  # the side file, attached read-only
PER_PERSON = frozenset(
    {
        "isRequired",
        "cdmDatatype",
        "measureValueCompleteness",
        "standardConceptRecordCompleteness",
        "sourceConceptRecordCompleteness",
        "plausibleValueLow",
        "plausibleValueHigh",
        "plausibleStartBeforeEnd",
        "plausibleUnitConceptIds",
        "fkDomain",
        "fkClass",
        "isStandardValidConcept",
        "plausibleDuringLife",
        "plausibleBeforeDeath",
        "plausibleAfterBirth",
        "plausibleGender",
        "plausibleGenderUseDescendants",
        "measurePersonCompleteness",
        "measureConditionEraCompleteness",
        "measureObservationPeriodOverlap",
        "isForeignKey",
        "plausibleTemporalAfter",
    }
)
"""Check types whose counts are sums over persons, given the tables `_reads` allows."""
_ALSO_READS = {
    "plausibleDuringLife": "death",
    "plausibleBeforeDeath": "death",
    "plausibleAfterBirth": "person",
    "plausibleGender": "person",
    "plausibleGenderUseDescendants": "person",
    "measurePersonCompleteness": "person",
    "measureConditionEraCompleteness": "condition_occurrence",
}
"""The table a check type joins on person_id besides the one checked."""


@dataclass
class RunMode:
    """How a run counted: 'whole' or 'per person', why, and over how many persons and checks."""

    mode: str = "whole"
    reason: str = ""
    persons: int | None = None
    merged_checks: int = 0
    build_fingerprint: str | None = None


@dataclass
class _Slice(Database):
    """The checked database with each sliced table read as the rows of the changed persons only."""

    sliced: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> str:
        return self.sliced.get(name) or super().table(name)

    def require_rows(self, table: str) -> None:
        """Applicability is the whole database's (planned first); an empty slice counts nothing."""


def merged_outcomes(
    con: duckdb.DuckDBPyConnection,
    db: Database,
    checks: Sequence[DqdCheck],
    plans: Sequence[Plan | NotApplicable],
    keys: Sequence[str | None],
    results_schema: str | None,
) -> tuple[dict[int, Outcome], RunMode]:
    """Outcomes of the per-person checks (by position), counted over the changed persons and merged
    with the last run's; empty, with the reason, when the run must count everything."""
    fingerprint = _fingerprint(con, db)
    prior, why = _prior_counts(con, db, results_schema)
    if prior is None:
        return {}, RunMode(reason=why, build_fingerprint=fingerprint)
    sliced = set(sliced_tables())
    chosen = [
        i
        for i, (check, plan, key) in enumerate(zip(checks, plans, keys, strict=True))
        if isinstance(plan, Plan)
        and _per_person(check, sliced)
        and prior.get(check_id(check), ("",))[0] == key
    ]
    try:
        merged = _merge(con, db, [checks[i] for i in chosen], prior)
        (persons,) = con.execute(f"SELECT count(*) FROM {REPLACED}.affected").fetchone()
    finally:
        _drop_slices(con)
    outcomes = {i: merged[k] for k, i in enumerate(chosen) if k in merged}
    return outcomes, RunMode("per person", why, int(persons), len(outcomes), fingerprint)


def _merge(con, db: Database, checks: Sequence[DqdCheck], prior: Mapping) -> dict[int, Outcome]:
    """Per check (by position in `checks`): the last run's counts, less the replaced rows', plus the
    rebuilt rows'. A check whose slice query failed is left out (it runs whole)."""
    from rwe_assets.lib.quality.runner import execute_all

    now, before = _slices(con, db, checks)
    new_counts = execute_all(con, [_plan(check, now) for check in checks])
    old_counts = execute_all(con, [_plan(check, before) for check in checks])
    merged = {}
    for k, (check, new, old) in enumerate(zip(checks, new_counts, old_counts, strict=True)):
        if new.error is None and old.error is None:
            _, violated, denominator = prior[check_id(check)]
            merged[k] = Outcome(
                violated - (old.violated or 0) + (new.violated or 0),
                denominator - (old.denominator or 0) + (new.denominator or 0),
                new.seconds + old.seconds,
            )
    return merged


def _drop_slices(con: duckdb.DuckDBPyConnection) -> None:
    for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'dq_now_%'"
    ).fetchall():
        con.execute(f"DROP TABLE temp.main.{quote_identifier(name)}")
    con.execute(f"DETACH DATABASE IF EXISTS {REPLACED}")


def _plan(check: DqdCheck, db: Database) -> Plan | NotApplicable:
    """The check over a slice: small tables, so a type that runs alone on whole tables is batched."""
    try:
        return dataclasses.replace(plan_check(check, db), small=True)
    except NotApplicable as na:  # cannot happen: planned on the whole database first
        return na


def _per_person(check: DqdCheck, sliced: set[str]) -> bool:
    reads = _reads(check)
    renumbered = RENUMBERED.get(check.table, ("",))[0] == check.field
    return reads is not None and not renumbered and check.table in sliced and reads <= sliced | _vocabulary()


def _reads(check: DqdCheck) -> set[str] | None:
    """Tables the check reads besides the vocabulary's concepts, or None when it is not per person."""
    name = check.check_name
    if name not in PER_PERSON:
        return None
    reads = {check.table}
    if name in _ALSO_READS:
        reads.add(_ALSO_READS[name])
    elif name == "isForeignKey":  # the referenced row must be the vocabulary's or the same person's
        target = check.params.get("fkTableName")
        own_person = target == "person" and check.field == "person_id" == check.params.get("fkFieldName")
        if not own_person and target not in _vocabulary():
            return None
        reads.add(target)
    elif name == "plausibleTemporalAfter":
        after = check.params.get("plausibleTemporalAfterTableName")
        if after not in (check.table, "person"):
            return None
        reads.add(after)
    return reads


@cache
def _vocabulary() -> frozenset[str]:
    return frozenset(t.name for t in cdm_spec().tables if t.is_vocabulary)


def _prior_counts(
    con: duckdb.DuckDBPyConnection, db: Database, results_schema: str | None
) -> tuple[dict[str, tuple[str, int, int]] | None, str]:
    """check_id -> (query, violated, denominator) of the last run, when it checked the build this one
    was made from and the side file of that build is at hand (attached as REPLACED); else None, why."""
    mark = _table_rows(con, db.cdm.catalog, BUILD_MARK, "token, base_fingerprint")
    if not mark:
        return None, "the build is not incremental"
    token, base = mark[0]
    side = _catalog_path(con, db.cdm.catalog)
    side = side.with_name(REPLACED_FILE) if side else None
    if side is None or not side.is_file():
        return None, "the rows the incremental build replaced are not kept"
    if results_schema is None:
        return None, "no results schema to read the last run from"
    results = quote_qualified(results_schema)
    last = _last_run(con, results)
    if last is None or last[1] != base:
        return None, "the last DQD run did not check the build this one was made from"
    con.execute(f"ATTACH {quote_literal(str(side))} AS {REPLACED} (READ_ONLY)")
    (side_token,) = con.execute(f"SELECT max(token) FROM {REPLACED}.build_token").fetchone()
    if side_token != token:
        con.execute(f"DETACH {REPLACED}")
        return None, "the side file belongs to another build"
    rows = con.execute(
        f"SELECT check_id, sql, num_violated_rows, num_denominator_rows FROM {results}.{RESULTS_TABLE} "
        "WHERE run_id = $run AND NOT is_error AND sql IS NOT NULL",
        {"run": last[0]},
    ).fetchall()
    return {
        c: (sql, int(v or 0), int(d or 0)) for c, sql, v, d in rows
    }, "the last run checked the build it started from"


def _last_run(con: duckdb.DuckDBPyConnection, results: str) -> tuple[str, str | None] | None:
    """(run id, fingerprint of the build it checked) of the run that started last."""
    try:
        return con.execute(
            f"SELECT r.run_id, b.build_fingerprint FROM {results}.{RESULTS_TABLE} r "
            f"JOIN {results}.{RUN_TABLE} b USING (run_id) ORDER BY r.run_at DESC, r.run_id DESC LIMIT 1"
        ).fetchone()
    except duckdb.CatalogException:
        return None


def _slices(
    con: duckdb.DuckDBPyConnection, db: Database, checks: Sequence[DqdCheck]
) -> tuple[_Slice, _Slice]:
    """The checked database read as the changed persons' rows: now (temp tables, each table filtered
    once) and before the build (the side file's tables)."""
    sliced = set(sliced_tables())
    tables = sorted({t for check in checks for t in (_reads(check) or ()) if t in sliced})
    now = {}
    for table in tables:
        temp = quote_identifier(f"dq_now_{table}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT * FROM {db.table(table)} "
            f"WHERE person_id IN (SELECT person_id FROM {REPLACED}.affected)"
        )
        now[table] = f"temp.main.{temp}"
    before = {t: f"{REPLACED}.cdm.{quote_identifier(t)}" for t in tables}
    common = {k: getattr(db, k) for k in ("con", "cdm", "vocab", "today", "columns", "tables")}
    return _Slice(**common, sliced=now), _Slice(**common, sliced=before)


def record_run(con: duckdb.DuckDBPyConnection, results_schema: str, run_id: str, mode: RunMode) -> None:
    """One row of RUN_TABLE: the build the run checked and how the run counted."""
    table = f"{quote_qualified(results_schema)}.{RUN_TABLE}"
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (run_id VARCHAR, build_fingerprint VARCHAR, mode VARCHAR, "
        "reason VARCHAR, persons BIGINT, merged_checks BIGINT)"
    )
    con.execute(f"DELETE FROM {table} WHERE run_id = $run", {"run": run_id})
    con.execute(
        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
        [run_id, mode.build_fingerprint, mode.mode, mode.reason, mode.persons, mode.merged_checks],
    )


def _fingerprint(con: duckdb.DuckDBPyConnection, db: Database) -> str | None:
    rows = _table_rows(con, db.cdm.catalog, FINGERPRINT_TABLE, "fingerprint")
    return rows[0][0] if rows else None


def _table_rows(con: duckdb.DuckDBPyConnection, catalog: str, table: str, columns: str) -> list[tuple]:
    """Rows of `table` (schema.name) in `catalog`, none when it does not exist."""
    try:
        return con.execute(f"SELECT {columns} FROM {quote_identifier(catalog)}.{table}").fetchall()
    except duckdb.CatalogException:
        return []


def _catalog_path(con: duckdb.DuckDBPyConnection, catalog: str) -> Path | None:
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE lower(database_name) = $c", {"c": catalog}
    ).fetchone()
    return Path(row[0]) if row and row[0] else None


def remove_side_file(con: duckdb.DuckDBPyConnection, db: Database) -> None:
    """Remove the incremental build's side file once a run has merged with it: it holds superseded
    rows, and a later run on this build checked by this one counts everything."""
    path = _catalog_path(con, db.cdm.catalog)
    if path is not None:
        side = path.with_name(REPLACED_FILE)
        for leftover in (side, side.with_name(side.name + ".wal")):
            leftover.unlink(missing_ok=True)


def recorded_mode(con: duckdb.DuckDBPyConnection, run_id: str, results_schema: str = "results") -> RunMode:
    """How run `run_id` counted, as `record_run` wrote it (whole, no reason, when not recorded)."""
    row = con.execute(
        f"SELECT mode, reason, persons, merged_checks, build_fingerprint "
        f"FROM {quote_qualified(results_schema)}.{RUN_TABLE} WHERE run_id = $run",
        {"run": run_id},
    ).fetchone()
    return RunMode(*row) if row else RunMode()
