"""Build the OMOP CDM v5.4 database (DuckDB) from staging, the vocabulary and the person crosswalk.

The build writes a fresh `build.duckdb` (the previous one is replaced only when the new one is
complete), so a crash leaves the last good build and the published file untouched. Its steps, in the
order the SQL needs, are the table lib/cdm/steps.py (name, SQL files or function, tables read and
written); each runs timed and logged on one connection, and a failing step's name is added to its
error. The SQL is in lib/sql/cdm/<file>.sql, loaded by lib/cdm/sql.py, each file's rule at its top.

Ids come from persistent id maps (lib/id_map.py), so the same input gives the same ids. After an
incremental staging run the build rebuilds only the persons it changed, into a copy of the last build
(lib/cdm/incremental.py, `_build_incremental`), when the fallback rule allows. A build failing at a
step keeps its partial database: the next build of the same inputs starts there (lib/cdm/resume.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import engines, eras, incremental, intermediates, resume, reuse, sql
from rwe_assets.lib.cdm.inputs import (  # noqa: F401 (re-exported: the build's lookup tables)
    TEMPERATURE_UNIT_ALIASES,
    UNIT_ALIASES,
    US_STATES,
    register_inputs,
    register_sources,
)
from rwe_assets.lib.cdm.ledger import LEDGER_TABLES, write_mapping_ledger, write_reconciliation_ledger
from rwe_assets.lib.cdm.results import (  # noqa: F401 (re-exported for callers of the build)
    PERSON_EXCLUSION_REASONS,
    STAGING_OUTCOMES,
    CdmBuildReport,
    CdmReconciliation,
    cdm_source,
    linkage_metrics,
    not_modelled,
    person_reconciliation,
    reconcile,
    reconcile_persons,
    row_count,
    staging_outcomes,
    unmapped_codes,
)
from rwe_assets.lib.cdm.results import exclude_unobserved_persons as _exclude_unobserved_persons
from rwe_assets.lib.cdm.resume import SCRATCH, WORK
from rwe_assets.lib.cdm.sql import PARAMETERS, SQL_DIR  # noqa: F401 (re-exported)
from rwe_assets.lib.cdm.steps import EVENT_TABLES, STAGING_VIEWS, STEPS, Call, Ids, Sql, Step, fix_ups
from rwe_assets.lib.cdm.visits import RollupResult, rollup_visits
from rwe_assets.lib.cdm.vocabulary_change import record_vocabulary
from rwe_assets.lib.cdm_spec import cdm_ddl, cdm_spec
from rwe_assets.lib.genomics.cdm import (
    GCDM_TABLES,
    GenomicsCdmReport,
    build_genomics_cdm,
    gcdm_ddl,
    register_staging,
)
from rwe_assets.lib.genomics.staging import VARIANT as GENOMICS_VARIANT
from rwe_assets.lib.id_map import assign_ids
from rwe_assets.lib.publish import BUILD, PUBLISHED
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.vocabulary import (
    VOCABULARY_TABLES,
    VocabularyStore,
    ensure_vocabulary_store,
    start_from_store,
)

_log = logging.getLogger(__name__)
__all__ = ["EVENT_TABLES", "STAGING_VIEWS", "CdmBuildReport", "CdmReconciliation", "build_cdm", "run_sql"]


def build_cdm(
    lake_dir: Path,
    vocab_dir: Path,
    warehouse_dir: Path,
    *,
    memory_limit: str = "3GB",  # Settings.cdm_memory_limit: the build spills past it (_configure)
    threads: int = 2,
    registry: SourceRegistry | None = None,
    reuse_unchanged: bool = True,
    incremental_build: bool = True,
    log: Callable[[str], None] | None = None,
    engine: str = "duckdb",
) -> CdmBuildReport:
    """Build warehouse/build.duckdb (a new file, or a copy of the last one) and swap it in once
    complete. `registry` (default: the project's) gives each source's person_priority
    (lib/sql/cdm/person.sql). With `reuse_unchanged`, a build.duckdb made from the same inputs
    (lib/cdm/reuse.py) is kept instead; with `incremental_build`, only the persons a staging run
    changed are rebuilt when the fallback rule allows (lib/cdm/incremental.py). `log` gets a line per
    step (name, seconds). `engine`: lib/cdm/engines.py."""
    engines.check(engine)
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    final, work = warehouse_dir / BUILD, warehouse_dir / WORK
    store = ensure_vocabulary_store(vocab_dir, warehouse_dir / "vocabulary")
    registry = registry or load_registry()
    inputs = reuse.input_state(lake_dir, store.digest, registry)
    fingerprint, last = reuse.fingerprint_of(inputs), reuse.recorded_fingerprint(final)
    if reuse_unchanged and fingerprint is not None and last == fingerprint:
        return _reused_report(final, store)
    run = _Run(lake_dir, store, final, registry, log or _log.info, (memory_limit, threads), inputs)
    plan = incremental.plan_build(lake_dir, final, inputs, allow=incremental_build and engine == "duckdb")
    key = resume.key_of(fingerprint, plan.mode, plan.reason, last) if engine == "duckdb" else None
    progress = resume.Progress.start(warehouse_dir, key, plan.mode == "incremental")
    if plan.mode == "incremental":
        try:
            report = _build_incremental(run, plan, progress)
        except incremental.Fallback as why:
            plan = incremental.Plan("full", str(why))
            progress = resume.Progress.start(warehouse_dir, None, incremental=False)
        else:
            resume.discard(warehouse_dir)
            return replace(
                report, mode=plan.mode, mode_reason=plan.reason, persons_rebuilt=plan.persons.num_rows,
                resumed_from=progress.resumed_from,
            )  # fmt: skip
    _log.info(f"CDM build: full ({plan.reason})")
    if progress.record is None:
        start_from_store(store, work)  # the vocabulary tables come as the store's file, not re-inserted
    con = duckdb.connect(str(work))
    try:
        _configure(con, warehouse_dir, memory_limit, threads)
        state = _State(con, lake_dir, store, final, registry, run.log)
        report = engines.run_on(engine, lambda: _build(state, progress), state, run.settings)
        reuse.record_fingerprint(con, fingerprint, inputs)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(work, final)
    resume.discard(warehouse_dir)
    return replace(report, mode_reason=plan.reason, resumed_from=progress.resumed_from)


@dataclass(frozen=True)
class _Run:
    """What one build_cdm call builds from, handed to the incremental build."""

    lake_dir: Path
    store: VocabularyStore
    final: Path
    registry: SourceRegistry
    log: Callable[[str], None]
    settings: tuple[str, int]  # memory_limit, threads
    inputs: dict | None


# The incremental build's scratch steps: those up to the eras, then the per-person ledger of them.
_LEDGER_READS = ("mapped_event", "code_map", "unit_map", "rollup_visit_map")
_LEDGER_READS += ("note_language", "stg_note", "crosswalk")  # unmapped note languages, by person
_LEDGER = Step("ledger", (Call("ledger"),), _LEDGER_READS, tuple(f"results.{t}" for t in LEDGER_TABLES))
SCRATCH_STEPS = (*STEPS[: [s.name for s in STEPS].index("dose_era") + 1], _LEDGER)


def _build_incremental(run: _Run, plan: incremental.Plan, progress: resume.Progress) -> CdmBuildReport:
    """The steps up to the eras over the persons of `plan` into a scratch database, merged into a copy
    of the last build; the genomics tables and the results then recomputed over the merged file. A
    rerun after a failed merge keeps the finished scratch database."""
    scratch, timer = run.final.parent / SCRATCH, _Timer()
    _log.info(f"CDM build: incremental ({plan.reason})")
    if {s.name for s in SCRATCH_STEPS} <= set(progress.finished):
        assert progress.record is not None
        hand_on, progress.resumed_from = progress.record.hand_on, progress.record.failed
    else:
        hand_on = _scratch_build(run, plan, progress, timer)
    try:
        report = _merge_into_last_build(run, plan, hand_on, timer)
    except Exception:
        progress.failed(None, "merge", hand_on, undone=True)  # the copy of the last build is made anew
        raise
    resume.remove(scratch)
    return report


def _scratch_build(run: _Run, plan: incremental.Plan, progress: resume.Progress, timer: _Timer) -> dict:
    """SCRATCH_STEPS over the persons of `plan`; returns what they hand on to the merge."""
    scratch = run.final.parent / SCRATCH
    if progress.record is None:
        start_from_store(run.store, scratch)
    con = duckdb.connect(str(scratch))
    try:
        _configure(con, run.final.parent, *run.settings)
        state = _State(con, run.lake_dir, run.store, run.final, run.registry, run.log, narrow_ids=True)

        def narrow() -> None:
            incremental.restrict_inputs(con, plan.persons, run.final)
            state.genomics_person_map = incremental.GENOMICS_PERSON_MAP

        _run_steps(state, SCRATCH_STEPS, timer, progress, before={"person": narrow})
        con.execute("CHECKPOINT")
        return resume.hand_on(state)
    finally:
        con.close()


def _merge_into_last_build(run: _Run, plan: incremental.Plan, hand_on: dict, timer: _Timer) -> CdmBuildReport:
    warehouse_dir = run.final.parent
    scratch, work = warehouse_dir / SCRATCH, warehouse_dir / WORK
    resume.remove(work)  # with a log a failed merge may have left, which DuckDB would replay
    with timer.step("copy_last_build"):
        copied = incremental.copy_last_build(run.final, work, run.settings)
    _log.info(f"CDM build: the last build {copied}")
    con = duckdb.connect(str(work))
    try:
        _configure(con, warehouse_dir, *run.settings)
        with timer.step("merge"):
            incremental.merge(con, scratch, plan.persons)
        state = _State(con, run.lake_dir, run.store, run.final, run.registry, run.log)
        resume.restore_hand_on(state, hand_on)
        with timer.step("whole_database"):
            _whole_database(state)
        reuse.record_fingerprint(con, reuse.fingerprint_of(run.inputs), run.inputs)
        con.execute("CHECKPOINT")
        merged = sum(r.merged_rows for r in state.reconciliation if r.cdm_table == "visit_occurrence")
        report = _report(state, timer, merged)
    finally:
        con.close()
    os.replace(work, run.final)
    return report


def _whole_database(state: _State) -> None:
    """What an incremental build recomputes over the merged file: CDM_SOURCE and the results (sums
    over the ledger where they count the build's intermediates)."""
    con = state.con
    register_inputs(con, state.lake_dir)
    register_staging(con, state.lake_dir)  # counted by the reconciliation
    con.execute("DELETE FROM cdm.cdm_source")
    for name in ("cdm_source", "vocabulary", "linkage_metrics", "staging_outcomes"):
        _CALLS[name](state)
    state.unmapped = unmapped_codes(con)
    state.reconciliation = reconcile(con, state.genomics)
    not_modelled(con, state.lake_dir)


def _reused_report(final: Path, store: VocabularyStore) -> CdmBuildReport:
    """The report of the build that made `final`, read back from it (excluded_reasons are not stored)."""
    started = time.perf_counter()
    with duckdb.connect(str(final), read_only=True) as con:
        names = [t.name for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES] + list(GCDM_TABLES)
        counts = {name: row_count(con, f"cdm.{name}") for name in names}
        (unmapped,) = con.execute(
            "SELECT coalesce(sum(rows), 0) FROM results.unmapped_codes WHERE code_kind = 'event code'"
        ).fetchone()
        rows = con.execute(
            "SELECT staged_table, cdm_table, staged_rows, cdm_rows, merged_rows, extra_rows, excluded_rows "
            "FROM results.reconciliation WHERE layer = 'cdm'"
        ).fetchall()
        (warning,) = con.execute("SELECT any_value(warning) FROM results.vocabulary").fetchone()
    reconciliation = tuple(CdmReconciliation(*row) for row in rows)
    merged = sum(r.merged_rows for r in reconciliation if r.cdm_table == "visit_occurrence")
    seconds = {"reused": time.perf_counter() - started}
    return CdmBuildReport(
        final, counts, store.version, int(unmapped), merged, reconciliation, seconds, warning, True,
        "reused", "the inputs are those of the last build",
    )  # fmt: skip


def _configure(con, warehouse_dir: Path, memory_limit: str, threads: int) -> None:
    """Bounded memory: past memory_limit DuckDB spills joins, aggregates and sorts to warehouse/tmp
    (removed when the connection closes), and the large intermediates go to compressed files
    (lib/cdm/intermediates.py); no statement needs its rows in insertion order."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET temp_directory = {quote_literal(str(warehouse_dir / 'tmp'))}")
    con.execute("SET preserve_insertion_order = false")
    intermediates.use(con, warehouse_dir)


class _Timer:
    """Seconds per build step, for asset metadata and the benchmark (bench/pipeline.py wraps it)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass
class _State:
    """The build's connection and inputs, and what steps hand on to later ones and to the report."""

    con: duckdb.DuckDBPyConnection
    lake_dir: Path
    store: VocabularyStore
    final: Path
    registry: SourceRegistry
    log: Callable[[str], None]
    rollup: RollupResult | None = None
    genomics: GenomicsCdmReport | None = None
    unmapped: int = 0
    vocabulary_warning: str | None = None
    reconciliation: tuple[CdmReconciliation, ...] = ()
    genomics_person_map: str = "crosswalk"  # person.sql's view; the incremental build's: every person
    narrow_ids: bool = False  # incremental: read of each id map only the keys asked
    genomics_staged: bool = False  # _register registered both genomics staging tables


def _build(state: _State, progress: resume.Progress) -> CdmBuildReport:
    timer = _Timer()
    _run_steps(state, STEPS, timer, progress)
    assert state.rollup is not None
    return _report(state, timer, state.rollup.merged_rows)


def _run_steps(
    state: _State,
    steps: tuple[Step, ...],
    timer: _Timer,
    progress: resume.Progress,
    before: Mapping[str, Callable[[], None]] | None = None,
) -> None:
    """`steps` in order (`before` runs ahead of the step it names), those a failed build of the same
    inputs finished skipped, its session restored first; a failing step is undone and recorded for
    the next build (lib/cdm/resume.py)."""
    if progress.record is not None:
        left = [step for step in steps if step.name not in progress.finished]
        progress.resume(state, _register, {name for step in left for name in step.reads})
    changing = fix_ups(steps)
    for number, step in enumerate(steps, 1):
        if step.name in progress.finished:
            continue
        hand_on = resume.hand_on(state)
        guard = resume.StepGuard(state.con, step, step.name in changing, progress.view_sql)
        try:
            with guard:
                if before and step.name in before:
                    before[step.name]()
                _timed_step(state, timer, step, number)
        except incremental.Fallback:
            raise
        except Exception as error:
            if progress.failed(state.con, step.name, hand_on, guard.undone):
                error.add_note(f"a rerun with the same inputs starts at step '{step.name}'")
            raise
        progress.finished.append(step.name)


def _timed_step(state: _State, timer: _Timer, step: Step, number: int) -> None:
    started = time.perf_counter()
    try:
        with timer.step(step.name):
            _run_step(state, step)
    except Exception as error:
        where = f"CDM build step {number}/{len(STEPS)} '{step.name}'"
        state.log(f"{where} failed after {time.perf_counter() - started:.2f} s")
        error.add_note(f"in {where} (lib/cdm/steps.py)")
        raise
    state.log(f"CDM build step {number}/{len(STEPS)} {step.name}: {timer.seconds[step.name]:.2f} s")


def _report(state: _State, timer: _Timer, visits_merged: int) -> CdmBuildReport:
    counts = {t.name: row_count(state.con, f"cdm.{t.name}") for t in cdm_spec().tables}
    counts = {name: n for name, n in counts.items() if name not in VOCABULARY_TABLES}
    counts.update({t: row_count(state.con, f"cdm.{t}") for t in GCDM_TABLES})
    return CdmBuildReport(
        state.final,
        counts,
        state.store.version,
        state.unmapped,
        visits_merged,
        state.reconciliation,
        dict(timer.seconds),
        state.vocabulary_warning,
    )


def _run_step(state: _State, step: Step) -> None:
    for action in step.actions:
        if isinstance(action, Sql):
            run_sql(state.con, action.name)
        elif isinstance(action, Ids):
            table = assign_ids(
                state.con, state.lake_dir, action.table, action.query, state.narrow_ids, dict(action.values)
            )
            intermediates.keep(state.con, table)
        elif isinstance(action, Call):
            _CALLS[action.name](state)


def run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Run lib/sql/cdm/<name>.sql with the concept-id parameters it uses (lib/cdm/sql.py)."""
    sql.run(con, name)


# --- the steps written in Python (named by Call in lib/cdm/steps.py) ---------------------------------


def _setup(state: _State) -> None:
    """The CDM's DDL, the results schema, the staging views, the crosswalk and the lookup tables."""
    for statement in cdm_ddl("cdm"):
        state.con.execute(statement)
    state.con.execute("CREATE SCHEMA IF NOT EXISTS results")
    _register(state)


def _register(state: _State) -> None:
    """The connection's inputs (lake tables and genomics staging as views, lookups), also on a resume."""
    register_inputs(state.con, state.lake_dir)
    register_sources(state.con, state.registry)
    state.genomics_staged = register_staging(state.con, state.lake_dir)


def _visit_rollup(state: _State) -> None:
    """Staged visits -> rolled-up visits (lib/cdm/visits.py), scratch tables not in the published file."""
    state.rollup = rollup_visits(state.con, "visit_input", "temp.main.rollup")
    intermediates.keep(state.con, "rollup_visit", "rollup_visit_map")


def _genomics(state: _State) -> None:
    """SPECIMEN, the genetic tests' PROCEDURE_OCCURRENCE rows and the G-CDM tables (lib/genomics/cdm.py),
    before observation periods so a tested person's test date counts as observed. Without any staged
    lab data the G-CDM tables are created empty."""
    con, lake_dir = state.con, state.lake_dir
    if lake.open_table(lake.table_path(lake_dir, "staging", GENOMICS_VARIANT)) is None:
        for statement in gcdm_ddl("cdm"):
            con.execute(statement)
        return
    state.genomics = build_genomics_cdm(
        con, lake_dir, state.genomics_person_map, registered=state.genomics_staged
    )


def _observation_period(state: _State) -> None:
    """Enrolled persons: their merged enrollment spans combined with the span of their EHR events;
    everyone else: the span of their events (rule in observation_period.sql)."""
    eras.build_observation_period_with_enrollment(
        state.con,
        "cdm",
        "payer_plan_period",
        period_type_concept_id=c.STANDARD_ALGORITHM_FROM_EHR,
        enrollment_period_type_concept_id=c.PERIOD_WHILE_ENROLLED_IN_INSURANCE,
        combine_event_span=True,
        claim_type_concept_ids=(c.CLAIM, c.PHARMACY_CLAIM),
    )


def _exclude_persons(state: _State) -> None:
    _exclude_unobserved_persons(state.con)  # looked up when called: tests replace it


def _cdm_source_step(state: _State) -> None:
    cdm_source(state.con, state.lake_dir, state.store.version)


def _vocabulary(state: _State) -> None:
    published = state.final.parent / PUBLISHED
    state.vocabulary_warning = record_vocabulary(state.con, state.store, published, EVENT_TABLES)


def _unmapped_codes(state: _State) -> None:
    write_mapping_ledger(state.con)
    state.unmapped = unmapped_codes(state.con)


def _reconciliation(state: _State) -> None:
    assert state.rollup is not None
    write_reconciliation_ledger(state.con, state.rollup.map_table)
    state.reconciliation = reconcile(state.con, state.genomics)
    not_modelled(state.con, state.lake_dir)


def _ledger(state: _State) -> None:
    """The incremental scratch build's per-person ledger (lib/cdm/ledger.py), merged into the last build."""
    assert state.rollup is not None
    write_mapping_ledger(state.con)
    write_reconciliation_ledger(state.con, state.rollup.map_table)


_CALLS: dict[str, Callable[[_State], None]] = {
    "setup": _setup,
    "visit_rollup": _visit_rollup,
    "genomics": _genomics,
    "observation_period": _observation_period,
    "exclude_unobserved_persons": _exclude_persons,
    "condition_era": lambda state: eras.build_condition_era(state.con, "cdm"),
    "drug_era": lambda state: eras.build_drug_era(state.con, "cdm"),
    "dose_era": lambda state: eras.build_dose_era(state.con, "cdm"),
    "cdm_source": _cdm_source_step,
    "vocabulary": _vocabulary,
    "unmapped_codes": _unmapped_codes,
    "linkage_metrics": lambda state: linkage_metrics(state.con, state.lake_dir),
    "staging_outcomes": lambda state: staging_outcomes(state.con, state.lake_dir),
    "reconciliation": _reconciliation,
    "ledger": _ledger,
}
