"""Running DQD checks: plan every check, execute the plans grouped to save scans and round trips, and
turn the outcomes into results.

How a plan runs is data: its check type's ``RunAs`` in ``catalogue.CHECK_KINDS`` (or the plan's own
``alone``). SCAN plans of one table are merged into one query (the table is read once for all of them);
BATCH plans run ``UNION_SIZE`` at a time in one UNION ALL; ALONE plans run one query each. A merged or
batched query that fails is run again check by check, so the error lands on the check that caused it.
Checks that read vocabulary tables only are run once per vocabulary, when its store is written
(``record_vocabulary_checks``), and their recorded outcomes reused. cdmTable and cdmField are answered
from the table and column lists read once (``existence_outcomes``). After an incremental CDM build the
per-person checks count the rebuilt persons and merge the last run's counts (incremental.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import duckdb

from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.dqd_spec import DqdCatalogue, DqdCheck, applicable_checks, dqd_catalogue
from rwe_assets.lib.quality.catalogue import (
    EXISTENCE_CHECKS,
    RunAs,
    fill_expression,
    scan_expressions,
    vocabulary_checks,
)
from rwe_assets.lib.quality.database import Database, NotApplicable, scalar
from rwe_assets.lib.quality.planner import PARAMETER, Plan, inline, plan_check
from rwe_assets.lib.quality.results import CheckResult, Outcome, concept_names_of, to_result, write_results
from rwe_assets.lib.sql_text import quote_identifier

UNION_SIZE = 64
"""BATCH plans per UNION ALL query."""


def run_checks(
    con: duckdb.DuckDBPyConnection,
    schema: str = "cdm",
    results_schema: str | None = "results",
    run_id: str = "",
    checks: Iterable[DqdCheck] | None = None,
    *,
    vocab_schema: str | None = None,
    today: dt.date | None = None,
    catalogue: DqdCatalogue | None = None,
) -> list[CheckResult]:
    """Evaluate checks (default: every applicable check of the catalogue) against the CDM tables in
    ``schema`` and write them to ``<results_schema>.dq_check_results`` (``None``: do not write).

    ``schema``, ``vocab_schema`` (default: ``schema``; holds CONCEPT, CONCEPT_ANCESTOR, ...) and
    ``results_schema`` may be qualified with a database, e.g. ``db.cdm`` for a file attached read-only
    as ``db``. ``run_id`` defaults to a new UTC-timestamped id. ``today`` fixes GETDATE() in the
    catalogue's bounds (default: the current date). Results come back in catalogue order.
    """
    from rwe_assets.lib.quality import incremental  # it reads lib/cdm, which imports this module

    catalogue = catalogue or dqd_catalogue()
    chosen = list(applicable_checks(catalogue=catalogue) if checks is None else checks)
    run_id = run_id or new_run_id()
    run_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db = Database.open(con, schema, vocab_schema or schema, today or dt.date.today())

    plans: list[Plan | NotApplicable] = []
    for check in chosen:
        try:
            plans.append(plan_check(check, db))
        except NotApplicable as na:
            plans.append(na)
    keys = [inline(p.sql, p.params) if isinstance(p, Plan) else None for p in plans]
    recorded = recorded_vocabulary_outcomes(con, db)  # checks of this vocabulary already run: not again
    # after an incremental build: per-person checks counted over the changed persons only
    merged, mode = incremental.merged_outcomes(con, db, chosen, plans, keys, results_schema)
    merged.update(existence_outcomes(db, plans))
    skip = [k in recorded or i in merged for i, k in enumerate(keys)]
    outcomes = execute_all(con, [NotApplicable("") if s else p for p, s in zip(plans, skip, strict=True)])
    outcomes = [
        merged.get(i) or (recorded.get(k, o) if k else o)
        for i, (k, o) in enumerate(zip(keys, outcomes, strict=True))
    ]

    names = concept_names_of(catalogue)
    results = [
        to_result(check, plan, outcome, catalogue, names, run_id, run_at)
        for check, plan, outcome in zip(chosen, plans, outcomes, strict=True)
    ]
    if results_schema is not None:
        write_results(con, results, results_schema)
        incremental.record_run(con, results_schema, run_id, mode)
        if mode.mode == "per person":  # used: the next run on this build counts everything anyway
            incremental.remove_side_file(con, db)
    return results


def new_run_id() -> str:
    """A fresh run id: UTC time to the second plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def existence_outcomes(db: Database, plans: Sequence[Plan | NotApplicable]) -> dict[int, Outcome]:
    """cdmTable and cdmField outcomes (by position) from the tables and columns `Database.open` read
    from information_schema: the answer of their queries, without asking it again once per check
    (hundreds of catalogue scans, the costliest part of a run that reuses the rest)."""
    outcomes = {}
    for index, plan in enumerate(plans):
        if isinstance(plan, Plan) and plan.template in EXISTENCE_CHECKS:
            p = plan.params
            key = (p["catalog"], p["schema_name"])
            if plan.template == "cdmTable":
                present = p["table_name"] in db.tables.get(key, set())  # names lower-cased, as compared
            else:
                present = f"{p['table_name']}.{p['column_name']}" in db.columns.get(key, {})
            outcomes[index] = Outcome(0 if present else 1, 1)
    return outcomes


# --- checks of the vocabulary alone: run once per vocabulary --------------------------------------

VOCABULARY_RESULTS = "dq_vocabulary_results"
"""Table (schema ``results`` of the vocabulary's database) of the outcomes of ``vocabulary_checks``."""


def record_vocabulary_checks(con: duckdb.DuckDBPyConnection, schema: str = "cdm") -> int:
    """Run ``vocabulary_checks`` on the vocabulary in ``schema`` and keep their outcomes, keyed by the
    query (values inlined) and valid for the vocabulary row counts seen, in ``results.<VOCABULARY_RESULTS>``
    of the connection's database. Returns the checks recorded (errors are not: they run again)."""
    results = run_checks(con, schema, None, run_id="vocabulary", checks=vocabulary_checks())
    db = Database.open(con, schema, schema, dt.date.today())
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    con.execute(
        f"CREATE OR REPLACE TABLE results.{VOCABULARY_RESULTS} (vocabulary_rows VARCHAR, sql VARCHAR, "
        "num_violated_rows BIGINT, num_denominator_rows BIGINT)"
    )
    rows = [
        (_vocabulary_rows(db), r.sql, r.num_violated_rows, r.num_denominator_rows)
        for r in results
        if r.sql is not None and not r.is_error
    ]
    if rows:
        con.executemany(f"INSERT INTO results.{VOCABULARY_RESULTS} VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def recorded_vocabulary_outcomes(con: duckdb.DuckDBPyConnection, db: Database) -> dict[str, Outcome]:
    """Outcomes recorded by ``record_vocabulary_checks`` in the vocabulary's database, by query, when its
    vocabulary tables still have the row counts they had then (else none: everything runs). A reused
    outcome reports 0 execution seconds: nothing ran for it."""
    found = con.execute(
        "SELECT database_name FROM duckdb_tables() WHERE lower(database_name) = $c "
        "AND schema_name = 'results' AND table_name = $t",
        {"c": db.vocab.catalog, "t": VOCABULARY_RESULTS},
    ).fetchone()
    if found is None:
        return {}
    table = f"{quote_identifier(found[0])}.results.{VOCABULARY_RESULTS}"
    rows = con.execute(
        f"SELECT sql, num_violated_rows, num_denominator_rows FROM {table} WHERE vocabulary_rows = $rows",
        {"rows": _vocabulary_rows(db)},
    ).fetchall()
    return {sql: Outcome(violated, denominator) for sql, violated, denominator in rows}


def _vocabulary_rows(db: Database) -> str:
    """Row counts of the vocabulary tables present, as JSON: what a recorded outcome is valid for."""
    present = db.tables[(db.vocab.catalog, db.vocab.name)]
    counts = {
        t.name: scalar(db.con, f"SELECT count(*) FROM {db.table(t.name)}")
        for t in cdm_spec().tables
        if t.is_vocabulary and t.name in present
    }
    return json.dumps(counts, sort_keys=True)


# --- execution ------------------------------------------------------------------------------------


def execute_all(con: duckdb.DuckDBPyConnection, plans: Sequence[Plan | NotApplicable]) -> list[Outcome]:
    """Run the plans, each as its ``run_as`` says: SCAN ones merged per table, BATCH ones ``UNION_SIZE``
    at a time in one UNION ALL, ALONE ones one query each. Outcomes in plan order."""
    outcomes: list[Outcome] = [Outcome()] * len(plans)
    scans: dict[str, list[int]] = defaultdict(list)
    batched: list[int] = []
    for index, plan in enumerate(plans):
        if not isinstance(plan, Plan):
            continue
        if plan.run_as is RunAs.SCAN:
            scans[plan.identifiers["table"]].append(index)
        elif plan.run_as is RunAs.BATCH:
            batched.append(index)
        else:
            outcomes[index] = _execute(con, plan.sql, plan.params)
    for table, indexes in scans.items():
        batch = [cast(Plan, plans[i]) for i in indexes]
        for index, outcome in zip(indexes, _execute_scan(con, table, batch), strict=True):
            outcomes[index] = outcome
    for start in range(0, len(batched), UNION_SIZE):
        indexes = batched[start : start + UNION_SIZE]
        batch = [cast(Plan, plans[i]) for i in indexes]
        for index, outcome in zip(indexes, _execute_union(con, batch), strict=True):
            outcomes[index] = outcome
    return outcomes


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any]) -> Outcome:
    start = time.perf_counter()
    try:
        row = con.execute(sql, dict(params) or None).fetchone()
    except duckdb.Error as error:
        return Outcome(seconds=time.perf_counter() - start, error=f"{type(error).__name__}: {error}")
    assert row is not None
    return Outcome(int(row[0] or 0), int(row[1] or 0), time.perf_counter() - start)


class _Binder:
    """Parameters of several checks in one query: each distinct value gets one name ($p0, $p1, ...),
    so checks sharing a value (the schema, a gender) share the parameter."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._names: dict[tuple[str, str], str] = {}

    def bind(self, sql: str, params: Mapping[str, Any]) -> str:
        return PARAMETER.sub(
            lambda m: "$" + self._name(params[m.group(1)]) if m.group(1) in params else m.group(0), sql
        )

    def _name(self, value: Any) -> str:
        key = (type(value).__name__, repr(value))
        if key not in self._names:
            self._names[key] = name = f"p{len(self._names)}"
            self.params[name] = value
        return self._names[key]


def _execute_scan(con: duckdb.DuckDBPyConnection, table: str, plans: Sequence[Plan]) -> list[Outcome]:
    """All scan-shaped checks of one table in one query (one scan); execution time is shared out
    evenly. If the merged query fails, each check runs alone so the error lands where it belongs."""
    if len(plans) == 1:
        return [_execute(con, plans[0].sql, plans[0].params)]
    binder = _Binder()
    select: list[str] = []
    for k, plan in enumerate(plans):
        violated, denominator = scan_expressions(plan.template)
        for expression, alias in ((violated, f"v{k}"), (denominator, f"d{k}")):
            filled = fill_expression(plan.template, expression, plan.identifiers)
            select.append(f"{binder.bind(filled, plan.params)} AS {alias}")
    sql = "SELECT " + ",\n       ".join(select) + f"\nFROM {table}"
    start = time.perf_counter()
    try:
        row = con.execute(sql, binder.params or None).fetchone()
    except duckdb.Error:
        return [_execute(con, plan.sql, plan.params) for plan in plans]
    assert row is not None
    share = (time.perf_counter() - start) / len(plans)
    return [Outcome(int(row[2 * k] or 0), int(row[2 * k + 1] or 0), share) for k in range(len(plans))]


def _execute_union(con: duckdb.DuckDBPyConnection, plans: Sequence[Plan]) -> list[Outcome]:
    """Several one-row checks in one UNION ALL query, each branch tagged with its position; time is
    shared out evenly; on failure each check runs alone."""
    if len(plans) == 1:
        return [_execute(con, plans[0].sql, plans[0].params)]
    binder = _Binder()
    branches = [
        f"SELECT {k} AS k, num_violated_rows, num_denominator_rows FROM (\n{binder.bind(plan.sql, plan.params)}\n)"
        for k, plan in enumerate(plans)
    ]
    start = time.perf_counter()
    try:
        rows = con.execute("\nUNION ALL\n".join(branches), binder.params or None).fetchall()
    except duckdb.Error:
        return [_execute(con, plan.sql, plan.params) for plan in plans]
    share = (time.perf_counter() - start) / len(plans)
    by_branch = {k: (violated, denominator) for k, violated, denominator in rows}
    return [Outcome(int(by_branch[k][0] or 0), int(by_branch[k][1] or 0), share) for k in range(len(plans))]
