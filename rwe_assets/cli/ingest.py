"""`rwe ingest` (and the end of `rwe demo`): every landed batch, then the build, in this process; the
errors of a finished run; the closing summary of what was built and where it is."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from rwe_assets.cli.data_dir import duckdb_cli, published_path
from rwe_assets.cli.exit_codes import FAILED, REFUSED
from rwe_assets.cli.progress import Phase, StepWatcher, print_table
from rwe_assets.settings import Settings


def ingest(settings: Settings, verbose: bool = False) -> int:
    """Refuse what the key cannot protect, then run every landed batch and the build, one progress line
    per phase, a closing table, and the error of whatever failed."""
    import dagster as dg

    from rwe_assets.lib.landing import list_batches
    from rwe_assets.lib.linkage_key import check_before_ingest
    from rwe_assets.lib.sources import load_registry

    registry = load_registry()
    landed = {source: list_batches(settings.landing_dir, source.name)[0] for source in registry}
    problem = check_before_ingest(settings, [batch for batches in landed.values() for batch in batches])
    if problem:
        print(f"rwe: {problem}", file=sys.stderr)
        return REFUSED
    from rwe_assets.definitions import defs
    from rwe_assets.defs.jobs import lake_writer_session
    from rwe_assets.lib.lake_lock import LakeLockedError

    phases: list[Phase] = []
    with dg.DagsterInstance.get() as instance:
        try:  # runs whose process died are failed first, then the lake is ours until the build ends
            with lake_writer_session(
                instance, settings, on_wait=lambda m: print(f"rwe: {m}", file=sys.stderr)
            ):
                for source, batches in landed.items():
                    phases += [_run_batch(defs, instance, source, batch, verbose) for batch in batches]
                phases += _run_build(defs, instance, verbose)
        except LakeLockedError as error:
            print(f"rwe: {error}", file=sys.stderr)
            return REFUSED
    print_table(phases)
    _print_summary(settings, len([p for p in phases if p.layer == "raw"]))
    failed = [phase for phase in phases if phase.errors]
    for phase in failed:
        print(f"FAILED: {phase.name}:", file=sys.stderr)
        for error in phase.errors:
            print(f"  {error}", file=sys.stderr)
    if failed:
        print("the runs and their logs are in the Dagster UI: make ui", file=sys.stderr)
    return FAILED if failed else 0


def _run_config(verbose: bool) -> dict:
    """Dagster's console logger: everything with --verbose, else silent (the watcher prints the quiet view)."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}}


def _run_batch(defs, instance, source, batch, verbose: bool) -> Phase:
    """The raw ingest of one batch (what the landing sensor requests), in this process."""
    from rwe_assets.defs.jobs import batch_tags, cli_run_tags, raw_job_name
    from rwe_assets.defs.partitions import register_batch
    from rwe_assets.defs.raw.assets import raw_key

    register_batch(instance, source.name, batch.partition_key)
    started, run_id = time.monotonic(), str(uuid.uuid4())
    with StepWatcher(instance, run_id, steps=False, warnings=not verbose):
        result = defs.resolve_job_def(raw_job_name(source.name)).execute_in_process(
            run_config=_run_config(verbose),
            instance=instance,
            partition_key=batch.partition_key,
            asset_selection=[raw_key(source.name, entity) for entity in source.entity_names],
            raise_on_error=False,
            run_id=run_id,
            tags={**batch_tags(batch), **cli_run_tags()},
        )
    added = sum(
        int(event.materialization.metadata["rows_added"].value)
        for event in result.get_asset_materialization_events()
        if "rows_added" in event.materialization.metadata
    )
    phase = Phase(f"raw {source.name}/{batch.batch_id}", "raw", added, time.monotonic() - started)
    phase.errors = [message for _, message in run_errors(result)]
    print(f"  {phase.name}: {'FAILED' if phase.errors else f'{added:,} rows added'} ({phase.seconds:.1f} s)")
    return phase


def _run_build(defs, instance, verbose: bool) -> list[Phase]:
    """The build job (staging and everything downstream) as one run, a progress line per step as it
    finishes (read from the run's event log by a watcher thread)."""
    run_id = str(uuid.uuid4())
    print("  build: staging, linkage, CDM, quality checks, publish")
    with StepWatcher(instance, run_id, warnings=not verbose) as watcher:
        result = execute_build(defs, instance, verbose, run_id)
    phases = watcher.phases()
    errors = run_errors(result)
    if errors:  # step errors by step; a run failing outside any step goes to a phase of its own
        by_step = {phase.name: phase for phase in phases}
        for step, message in errors:
            by_step.get(step, phases[-1] if phases else Phase("build", "build")).errors.append(message)
        if not phases:
            phases = [Phase("build", "build", errors=[message for _, message in errors])]
    return phases


def execute_build(defs, instance, verbose: bool = False, run_id: str | None = None):
    """The build job in this process as `rwe ingest` runs it (its tags and run config); the result of
    execute_in_process, which does not raise on a failed step (run_errors lists them)."""
    from rwe_assets.defs.jobs import cli_run_tags

    return defs.resolve_job_def("build").execute_in_process(
        run_config=_run_config(verbose),
        instance=instance,
        run_id=run_id,
        raise_on_error=False,
        tags=cli_run_tags(build=True),
    )


def run_errors(result) -> list[tuple[str, str]]:
    """(step, message) for every failed step, blocking check and run-level failure of a finished run."""
    errors = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            errors.append((event.step_key, _failure_text(event.step_failure_data)))
        elif event.event_type_value == "RUN_FAILURE" and not errors:
            errors.append(("", event.message or "the run failed before any step ran"))
    for check in result.get_asset_check_evaluations():
        if not check.passed and check.severity.value == "ERROR":
            errors.append(
                ("", f"blocking check {check.check_name} failed on {check.asset_key.to_user_string()}")
            )
    return errors


def _failure_text(data) -> str:
    """The step's own message (a dg.Failure's description, or the exception's) and, for a batch, the
    list of files that could not be read (its 'errors' metadata), never a traceback."""
    error = data.error
    while error is not None and error.cause is not None:  # Dagster's wrapper first, the step's own last
        error = error.cause
    text = (data.user_failure_data.description if data.user_failure_data else None) or (
        error.message.strip() if error else "failed"
    )
    details = data.user_failure_data.metadata.get("errors") if data.user_failure_data else None
    return f"{text}\n    {details.value.replace(chr(10), chr(10) + '    ')}" if details is not None else text


def _print_summary(settings: Settings, batches_run: int) -> None:
    from rwe_assets.lib.raw_ingest import read_manifest

    manifest = read_manifest(settings.lake_dir)
    print(f"\nbatches run: {batches_run}; files in the ingest manifest: {manifest.num_rows}")
    database = published_path(settings)
    if database.exists():
        counts, kept_in_raw = published_counts(database)
        for table, rows in counts:
            print(f"  cdm.{table}: {rows:,} rows")
        if kept_in_raw:  # landed and kept, but nothing models them yet: say so, never silently
            listed = ", ".join(f"{name} {rows:,}" for name, rows in kept_in_raw)
            print(f"\nkept in raw, not modelled ({sum(r for _, r in kept_in_raw):,} rows): {listed}")
        print(f"\nOMOP CDM v5.4 database (open read-only): {database}")
        print(f"  {duckdb_cli()} -readonly {database}")
        print(f"  or in Python: duckdb.connect('{database}', read_only=True)")
    print(f"lake (Delta: raw, staging, linkage): {settings.lake_dir}")
    print(f"linkage key: {_key_origin(settings)}")
    print("open the Dagster UI with: make ui   (then http://127.0.0.1:3000)")


def _key_origin(settings: Settings) -> str:
    from rwe_assets.lib.linkage_key import demo_key_in_use

    if demo_key_in_use(settings):
        return "the public DEMO key, accepted for demo data only (`make init` before landing your own)"
    if os.environ.get("RWE_LINKAGE_KEY"):
        return "RWE_LINKAGE_KEY from the environment"
    return f"RWE_LINKAGE_KEY from {settings.env_file}"


def published_counts(published: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Exact row counts of the non-empty cdm tables (count(*): duckdb_tables().estimated_size is an
    estimate that also counts deleted rows), and the staged rows nothing models yet."""
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'cdm' ORDER BY table_name"
            ).fetchall()
        ]
        counts = [(name, con.execute(f'SELECT count(*) FROM cdm."{name}"').fetchone()[0]) for name in tables]
        kept_in_raw = con.execute(
            "SELECT staged_table, staged_rows FROM results.reconciliation WHERE cdm_table = 'not_modelled' "
            "ORDER BY staged_rows DESC"
        ).fetchall()
    return [(name, rows) for name, rows in counts if rows], kept_in_raw
