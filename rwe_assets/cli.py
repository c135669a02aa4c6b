"""The `rwe` command: run the graph on the bundled sample, ingest what landed, open the UI.

Every tool it starts is started from this interpreter (`sys.executable -m dagster`, the DuckDB CLI
installed beside it), and every command it prints is a full path or a `make` target, so what it says
works from a plain shell where the virtual environment is not on PATH.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rwe_assets.settings import REPO_DIR, Settings

SAMPLE_DIR = REPO_DIR / "data" / "sample"
# source -> bundled batch folder under data/sample/
SAMPLE_BATCHES = {"ehr_sample": "synthea27", "ehr_sample_fhir": "fhir13"}
# The demo's generated population: small enough to build in a minute, fixed so every demo is the same.
DEMO_PERSONS, DEMO_SEED = 2_000, 42
# Exit codes: 1 a run failed; 2 refused before anything ran (configuration, key).
FAILED, REFUSED = 1, 2
# Commands kept in their own module: name -> module with HELP, add_arguments(parser) and
# run(settings, args) -> exit code. The module is imported only to parse and run its command.
COMMAND_MODULES: dict[str, str] = {
    "erase": "rwe_assets.lib.governance.erase",
    "review": "rwe_assets.lib.linkage.review",
    "rotate-key": "rwe_assets.lib.linkage.rotate",
    "extract": "rwe_assets.lib.governance.extract",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:  # its own options: rwe_assets/synthetic/cli.py
        from rwe_assets.synthetic.cli import main as generate_main

        return generate_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "compare":  # reads two files: no settings, no Dagster home
        return _compare(args.cdm_a, args.cdm_b, args.tables, args.limit)
    from rwe_assets.errors import ConfigError

    try:
        return _dispatch(args)
    except ConfigError as error:
        print(f"rwe {args.command}: {error}", file=sys.stderr)
        return REFUSED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init", help="write a secret linkage key and a tombstone key into <data>/rwe.env (mode 0600), once"
    )
    demo = commands.add_parser("demo", help="land the bundled samples and a generated population, build")
    demo.add_argument(
        "--persons", type=int, default=DEMO_PERSONS, help="generated persons (default %(default)s)"
    )
    commands.add_parser("generate", help="write a synthetic multi-source population (rwe generate --help)")
    commands.add_parser("ingest", help="ingest every batch waiting in the landing zone, then build")
    for command in (demo, commands.choices["ingest"]):
        command.add_argument(
            "--verbose", action="store_true", help="print Dagster's debug log and every warning"
        )
    ui = commands.add_parser("ui", help="start the Dagster UI (dagster dev) with sensors on")
    ui.add_argument("--port", type=int, default=3000)
    clean = commands.add_parser(
        "clean", help="remove what the demo landed and everything built; keep your own batches"
    )
    clean.add_argument(
        "--all", action="store_true", help="remove your landed batches too (configuration stays)"
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the ingest manifest against the raw Delta tables and repair what a crash or a second "
        "writer left (files listed twice, rows stored twice, manifest rows without rows, orphan rows, runs "
        "whose process is gone); exit 0 when the lake is (now) consistent, 1 when something could not be "
        "repaired",
    )
    doctor.add_argument(
        "--check", action="store_true", help="only report; repair nothing (exit 1 if anything is found)"
    )
    sql = commands.add_parser("sql", help="open the published CDM read-only in the DuckDB shell")
    sql.add_argument("file", nargs="?", type=Path, help="a DuckDB file (default: the published rwe.duckdb)")
    compare = commands.add_parser(
        "compare",
        help="compare two CDM DuckDB files fact by fact, surrogate ids aside; exit 1 if they differ",
    )
    compare.add_argument("cdm_a", type=Path, metavar="A.duckdb")
    compare.add_argument("cdm_b", type=Path, metavar="B.duckdb")
    compare.add_argument(
        "--table",
        action="append",
        dest="tables",
        metavar="TABLE",
        help="compare this table (repeatable); default: all but the vocabulary and cdm_source",
    )
    compare.add_argument("--limit", type=int, default=20, help="differing rows shown per table and side")
    for name, module in COMMAND_MODULES.items():
        command = importlib.import_module(module)
        command.add_arguments(commands.add_parser(name, help=command.HELP))
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    _report_landing(settings)  # every command says what in the landing zone is never read
    if args.command == "init":
        return _init(settings)
    if args.command == "sql":
        return _sql(args.file or _published(settings))
    if args.command == "clean":
        return _clean(settings, everything=args.all)
    _prepare_dagster_home(settings)
    if args.command == "doctor":
        from rwe_assets.lib.doctor import main as doctor_main

        return doctor_main(settings, repair=not args.check)
    if args.command == "ui":
        return _ui(args.port)
    if args.command in COMMAND_MODULES:
        return importlib.import_module(COMMAND_MODULES[args.command]).run(settings, args)
    if args.command == "demo":
        _land_sample(settings)
        _land_generated_population(settings, args.persons)
    return _ingest(settings, verbose=args.verbose)


def _prepare_dagster_home(settings: Settings) -> Path:
    """Dagster keeps runs and events in DAGSTER_HOME: by default <data>/dagster_home, so one data
    directory has one Dagster instance whatever the working directory (two homes over one lake would
    not see each other's runs). Seeded with the repository's dagster.yaml (telemetry off, pools)."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(settings.default_dagster_home)
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(REPO_DIR / "dagster.yaml", config)
    return home


def _report_landing(settings: Settings) -> list[str]:
    """Say what in the landing zone is never read: folders no source declares, and entries of a source's
    folder that are no batch (bad names, symlinks, paths resolving outside the landing zone)."""
    from rwe_assets.lib.landing import invalid_batches
    from rwe_assets.lib.sources import load_registry, unknown_landing_folders

    registry = load_registry()
    unknown = unknown_landing_folders(settings.landing_dir, registry)
    for name in unknown:
        print(
            f"warning: landing/{name} is not a source in the registry and is not read "
            f"(declare it in {settings.user_sources_file}, or move its batches to landing/<source>/)",
            file=sys.stderr,
        )
    for entry in invalid_batches(settings.landing_dir, registry):
        print(f"warning: {entry.describe()}", file=sys.stderr)
    return unknown


def _init(settings: Settings) -> int:
    from rwe_assets.lib.linkage_key import write_new_key

    if os.environ.get("RWE_LINKAGE_KEY"):
        print("RWE_LINKAGE_KEY is set in the environment: it is used, nothing written")
        return 0
    try:
        path = write_new_key(settings)
    except FileExistsError:
        print(f"{settings.env_file} exists: kept as it is (a new key would make earlier tokens unmatchable)")
        return 0
    print(
        f"wrote a new secret linkage key and tombstone key to {path} (mode 0600); the `rwe` command and the UI read it"
    )
    print("keep it with the data: records linked with it can only be re-linked with the same key")
    return 0


def _clean(settings: Settings, everything: bool = False) -> int:
    """Remove what can be rebuilt (lake, warehouse, the default Dagster home, ground truth) and the demo's
    landed batches; with `everything`, the whole landing zone too. rwe.env (the key) and sources.yaml are
    configuration and stay: a key removed by accident makes a kept lake unlinkable."""
    landed = [settings.landing_dir] if everything else demo_batches(settings)
    derived = [
        *([settings.lake_dir] if isinstance(settings.lake_dir, Path) else []),  # a bucket is not cleaned
        settings.warehouse_dir,
        settings.default_dagster_home,
        settings.data_dir / "truth",
    ]
    for path in [*landed, *derived, settings.data_dir / ".generating"]:
        if path.is_dir():
            shutil.rmtree(path)
            print(f"removed {path}")
        elif path.exists():
            path.unlink()
            print(f"removed {path}")
    if not everything and settings.landing_dir.is_dir():
        kept = sorted(
            p.relative_to(settings.landing_dir).as_posix() for p in settings.landing_dir.glob("*/*")
        )
        if kept:
            print(
                f"kept your landed batches ({len(kept)}): {', '.join(kept[:5])}{' ...' if len(kept) > 5 else ''}"
            )
    return 0


def demo_batches(settings: Settings) -> list[Path]:
    """The batch folders `rwe demo` landed: the bundled samples and the generated batches that the
    generator's ground truth lists (truth/expected_counts.csv)."""
    import csv

    batches = {settings.landing_dir / source / batch for source, batch in SAMPLE_BATCHES.items()}
    listing = settings.data_dir / "truth" / "expected_counts.csv"
    if listing.exists():
        with listing.open(encoding="utf-8") as handle:
            batches |= {settings.landing_dir / row["SOURCE"] / row["BATCH"] for row in csv.DictReader(handle)}
    return sorted(batches)


def _published(settings: Settings) -> Path:
    from rwe_assets.lib.publish import PUBLISHED

    return settings.warehouse_dir / PUBLISHED


def duckdb_cli() -> Path:
    """The DuckDB shell installed with the project (the duckdb-cli package), beside this interpreter."""
    return Path(sys.executable).parent / "duckdb"


def _sql(database: Path) -> int:
    """Replace this process with the DuckDB shell on `database`, read-only (the pipeline may be writing
    a new build beside it; the published file is only ever swapped, never written in place)."""
    if not database.exists():
        print(f"rwe sql: {database} does not exist yet: run the demo or an ingest first", file=sys.stderr)
        return REFUSED
    shell = duckdb_cli()
    if not shell.exists():
        print(f"rwe sql: no DuckDB shell at {shell}: install the project's dependencies", file=sys.stderr)
        return REFUSED
    os.execv(shell, [str(shell), "-readonly", str(database)])
    return 0  # not reached


def _land_sample(settings: Settings) -> None:
    for source, batch in SAMPLE_BATCHES.items():
        target = settings.landing_dir / source / batch
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(SAMPLE_DIR / batch, target)
            print(f"landed the bundled sample: {target}")


def _land_generated_population(settings: Settings, persons: int = DEMO_PERSONS) -> None:
    """Generate the demo population (all four sources, ground truth beside) unless it has landed."""
    from rwe_assets.synthetic import generate

    if (settings.landing_dir / "ehr_site_a").exists():
        return
    staging = settings.data_dir / ".generating"  # hidden: the landing sensor ignores it
    shutil.rmtree(staging, ignore_errors=True)
    report = generate(staging, persons=persons, seed=DEMO_SEED)
    for batch in sorted((staging / "landing").glob("*/*")):  # whole batches, each moved by one rename
        target = settings.landing_dir / batch.parent.name / batch.name
        target.parent.mkdir(parents=True, exist_ok=True)
        batch.rename(target)
    shutil.rmtree(settings.data_dir / "truth", ignore_errors=True)
    (staging / "truth").rename(settings.data_dir / "truth")
    shutil.rmtree(staging)
    print(
        f"generated {persons} synthetic persons (seed {DEMO_SEED}) into {settings.landing_dir}; "
        f"ground truth in {settings.data_dir / 'truth'} ({report.rows_written} rows)"
    )


def _ingest(settings: Settings, verbose: bool = False) -> int:
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
    _print_table(phases)
    _print_summary(settings, len([p for p in phases if p.layer == "raw"]))
    failed = [phase for phase in phases if phase.errors]
    for phase in failed:
        print(f"FAILED: {phase.name}:", file=sys.stderr)
        for error in phase.errors:
            print(f"  {error}", file=sys.stderr)
    if failed:
        print("the runs and their logs are in the Dagster UI: make ui", file=sys.stderr)
    return FAILED if failed else 0


@dataclass
class Phase:
    """One line of the closing table: a raw batch, or one step of the build."""

    name: str
    layer: str
    rows: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


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
    with _StepWatcher(instance, run_id, steps=False, warnings=not verbose):
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
    with _StepWatcher(instance, run_id, warnings=not verbose) as watcher:
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


# Build steps as the table names them; a step not listed keeps its own name.
STEP_LABELS = {
    "staging": "staging",
    "linkage": "linkage",
    "cdm_build": "cdm",
    "results__dq_check_results": "quality checks",
    "publish__rwe_duckdb": "publish",
}


class _StepWatcher:
    """Follows one run's event log from a thread: prints a line as each step starts and ends (with
    `steps`) and every warning the run logs, and keeps rows (the materializations' dagster/row_count)
    and seconds per step for the closing table. Dagster's own console logger stays silent unless
    --verbose: this is the quiet view of the same events, without tracebacks (errors come at the end)."""

    def __init__(
        self, instance, run_id: str, steps: bool = True, warnings: bool = True, interval: float = 0.5
    ):
        self._instance, self._run_id, self._interval = instance, run_id, interval
        self._steps, self._warnings = steps, warnings
        self._cursor, self._started = None, {}
        self._phases: dict[str, Phase] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    EVENTS = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_MATERIALIZATION")

    def __enter__(self) -> _StepWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()  # what arrived after the last look

    def phases(self) -> list[Phase]:
        return list(self._phases.values())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._poll()

    def _poll(self) -> None:
        try:
            connection = self._instance.get_records_for_run(self._run_id, cursor=self._cursor)
        except Exception:  # the run is not stored yet, or storage is busy: look again next time
            return
        self._cursor = connection.cursor
        for record in connection.records:
            self._on_event(record.event_log_entry)

    def _on_event(self, entry) -> None:
        event = entry.dagster_event
        if event is None:  # a log line: warnings are shown (a step's ERROR comes back as its failure)
            if self._warnings and entry.level == logging.WARNING:
                print(f"  warning: {entry.step_key or 'run'}: {entry.user_message}", flush=True)
            return
        if event.event_type_value not in self.EVENTS or not self._steps:
            return
        step = event.step_key
        label = STEP_LABELS.get(step, step)
        phase = self._phases.setdefault(step, Phase(label, label))
        if event.event_type_value == "STEP_START":
            self._started[step] = entry.timestamp
            print(f"  {label} ...", flush=True)
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            rows = event.event_specific_data.materialization.metadata.get("dagster/row_count")
            phase.rows += int(rows.value) if rows is not None else 0
        else:
            phase.seconds = entry.timestamp - self._started.get(step, entry.timestamp)
            outcome = "FAILED" if event.event_type_value == "STEP_FAILURE" else f"{phase.rows:,} rows"
            print(f"  {label}: {outcome} ({phase.seconds:.1f} s)", flush=True)


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


def _print_table(phases: list[Phase]) -> None:
    raw = [phase for phase in phases if phase.layer == "raw"]
    rows = [Phase(f"raw ({len(raw)} batches)", "raw", sum(p.rows for p in raw), sum(p.seconds for p in raw))]
    rows += [phase for phase in phases if phase.layer != "raw"]
    width = max(len(phase.name) for phase in rows) + 2
    print(f"\n{'phase':<{width}}{'rows':>14}{'seconds':>10}")
    for phase in rows:
        status = "  FAILED" if phase.errors else ""
        print(f"{phase.name:<{width}}{phase.rows:>14,}{phase.seconds:>10.1f}{status}")
    print(f"{'total':<{width}}{'':>14}{sum(phase.seconds for phase in rows):>10.1f}")


def _print_summary(settings: Settings, batches_run: int) -> None:
    from rwe_assets.lib.raw_ingest import read_manifest

    manifest = read_manifest(settings.lake_dir)
    print(f"\nbatches run: {batches_run}; files in the ingest manifest: {manifest.num_rows}")
    published = _published(settings)
    if published.exists():
        counts, kept_in_raw = published_counts(published)
        for table, rows in counts:
            print(f"  cdm.{table}: {rows:,} rows")
        if kept_in_raw:  # landed and kept, but nothing models them yet: say so, never silently
            listed = ", ".join(f"{name} {rows:,}" for name, rows in kept_in_raw)
            print(f"\nkept in raw, not modelled ({sum(r for _, r in kept_in_raw):,} rows): {listed}")
        print(f"\nOMOP CDM v5.4 database (open read-only): {published}")
        print(f"  {duckdb_cli()} -readonly {published}")
        print(f"  or in Python: duckdb.connect('{published}', read_only=True)")
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


def _compare(path_a: Path, path_b: Path, tables: list[str] | None, limit: int) -> int:
    """Print the comparison; 0 when the files hold the same facts, 1 when not, 2 when they cannot be read."""
    import duckdb

    from rwe_assets.errors import RweError
    from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison

    try:
        comparison = compare_cdms(path_a, path_b, tables, limit)
    except (RweError, duckdb.Error) as error:
        print(f"rwe compare: {error}", file=sys.stderr)
        return 2
    print(format_comparison(comparison))
    return 0 if comparison.same else 1


def _ui(port: int) -> int:
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_DIR / "workspace.yaml")]
    return subprocess.call([*command, "-h", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    sys.exit(main())
