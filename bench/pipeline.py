"""Whole-pipeline benchmark: landing -> raw -> staging -> linkage -> OMOP CDM -> DQ -> published DuckDB.

    python bench/pipeline.py --persons 10000 [100000 ...] [--workdir DIR] [--keep]
                             [--memory-limit 8GB] [--staging-memory-limit 3GB] [--cdm-memory-limit 3GB]
                             [--threads 2] [--seed 42] [--gzip] [--sources ehr_site_a ...]
                             [--population DIR] [--profile PHASE] [--no-baselines]
                             [--resume DIR/persons_N --start-at PHASE]

For each population size, in this one process and one after the other:

1. generates the population with rwe_assets.synthetic.generate(out_dir, persons, seed=--seed,
   compress=--gzip) into a fresh work dir (timed on its own: it is not part of the pipeline), or
   reuses one generated beforehand with `--population DIR` (`rwe generate --out DIR`); with
   --sources, only those sources' batches are ingested, staged and loaded by the baseline (the peer
   comparison of issue 25: the Synthea site alone is `--sources ehr_site_a`);
2. runs the pipeline with rwe_assets' library functions, not Dagster (no run storage, event log,
   asset checks or subprocesses: the work itself): raw ingest_batch of every landed batch of every
   registered source, build_staging, build_crosswalk, build_cdm (its report's step_seconds give the
   CDM steps), the DQD suite (run_checks) on build.duckdb writing results.dq_check_results (publishing
   refuses a build without them), then publish;
3. measures two bare baselines on the same data: (a) DuckDB only loading the staging Delta tables
   (lake/staging/*, via deltalake -> pyarrow dataset) into tables of a new DuckDB file, and (b) DuckDB
   only loading every landed CSV (read_csv, all_varchar) and NDJSON file (read_json_objects) into
   tables of a new DuckDB file;
4. prints rows, wall and CPU seconds, rows/s and peak RSS per layer (and per sub-step), the
   baselines and the ratios cdm build / bare staging load and landing->published / bare landing load.

RSS is sampled from VmRSS in /proc/self/status by a background thread every 50 ms; each phase (and
sub-step) keeps the maximum it saw. Disk: the same thread reads the scratch file system's used bytes
every second; the peak above the start of the size's run is printed (other processes writing to the
same file system count too). Staging runs on its own DuckDB connection with --staging-memory-limit
(it processes one source at a time and spills to the lake's scratch dir past that limit), the CDM
build with --cdm-memory-limit (it spills to warehouse/tmp). Freed heap is returned to the OS
(malloc_trim) before each phase.
Sub-steps are timed by wrapping rwe_assets functions in this process at run time (the code is not
changed): the staging functions build_staging calls, the CDM build's step timer, the crosswalk's
Delta writes. The process works in the scratch dir, so a DuckDB in-memory database that spills writes
its .tmp there. The scratch dir is deleted after each size unless --keep.

A run that failed at a phase can go on from it: `--resume DIR/persons_N --start-at PHASE` works in the
scratch dir of one size kept by the earlier run (--keep), runs PHASE and the phases after it (staging
and the CDM build rebuild whole, not incrementally) and never deletes that dir. Each phase's line is
printed as it ends, so a killed run still leaves the figures of the phases it finished.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import gc
import io
import os
import platform
import pstats
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import deltalake
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from rwe_assets.lib.cdm import build as cdm_build_module
from rwe_assets.lib.cdm import steps
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.genomics.staging import stage_genomics_sources
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.linkage import crosswalk as crosswalk_module
from rwe_assets.lib.linkage.crosswalk import DEMO_KEY, build_crosswalk, register_staged_persons
from rwe_assets.lib.publish import publish
from rwe_assets.lib.quality.dqd import run_checks, summarize
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.staging import accounting as staging_accounting
from rwe_assets.lib.staging import build as staging_module
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate

SAMPLE_INTERVAL_S = 0.05
DISK_EVERY = 20  # disk usage is read every DISK_EVERY RSS samples (1 s)
MIB = 1 << 20
PHASES = ("ingest", "staging", "linkage", "cdm", "publish", "dq")
# CDM build step -> the CDM tables it writes (lib/cdm/steps.py), for rows/s per step
CDM_STEP_TABLES = {s.name: tuple(t[4:] for t in s.writes if t.startswith("cdm.")) for s in steps.STEPS}
# The functions build_staging calls, timed one by one; the label says which source or table.
STAGING_STEPS: dict[str, Callable[..., str]] = {
    "_create_candidate_tables": lambda *a, **k: "create candidate tables",
    "_write_pieces": lambda *a, **k: "write Parquet pieces (per source)",
    "_stage_source": lambda con, lake_dir, source, *a, **k: f"stage source {source.name} (SQL -> candidates)",
    "redact_identifying_answers": lambda *a, **k: "redact identifying answers",
    "create_snapshot_cover": lambda *a, **k: "snapshot cover (persons in several batches)",
    "number_natural_key_collisions": lambda con, table, *a, **k: f"number natural key collisions {table}",
    "retire_absent": lambda con, table, *a, **k: f"retire_absent {table}",
    "resolve_versions": lambda con, table, *a, **k: f"resolve_versions {table}",
    "check_reference": lambda con, table, column, *a, **k: f"check_reference {table}.{column}",
    "_refresh_staged": lambda con, table, *a, **k: f"refresh staged_{table}",
    "_write_outputs": lambda *a, **k: "write Delta outputs",
}
# lib/staging/accounting.py, called by build_staging as accounting.<name>
ACCOUNTING_STEPS: dict[str, Callable[..., str]] = {
    "report": lambda *a, **k: "report (reconciliation counts)",
}


# --------------------------------------------------------------------------- measuring


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def release_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class Measure:
    """Wall and CPU seconds, RSS at the start and the peak of one phase or sub-step (summed over calls)."""

    name: str
    wall: float = 0.0
    cpu: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    calls: int = 0
    rows: int | None = None
    subs: list[Measure] = field(default_factory=list)

    def sub(self, name: str) -> Measure:
        for measure in self.subs:
            if measure.name == name:
                return measure
        measure = Measure(name)
        self.subs.append(measure)
        return measure


class RssSampler:
    """Samples VmRSS every SAMPLE_INTERVAL_S; every open window keeps the peak it saw."""

    def __init__(self, disk_path: Path):
        self._disk_path = disk_path
        self.disk_start = self.disk_peak = shutil.disk_usage(disk_path).used
        self._open: list[Measure] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        samples = 0
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.sample()
            samples += 1
            if samples % DISK_EVERY == 0:
                self.disk_peak = max(self.disk_peak, shutil.disk_usage(self._disk_path).used)

    def reset_disk(self) -> None:
        self.disk_start = self.disk_peak = shutil.disk_usage(self._disk_path).used

    def sample(self) -> None:
        rss = rss_bytes()
        with self._lock:
            for measure in self._open:
                measure.rss_peak = max(measure.rss_peak, rss)

    @contextlib.contextmanager
    def measure(self, measure: Measure, *, release: bool = False) -> Iterator[Measure]:
        if release:
            release_memory()
        start = rss_bytes()
        with self._lock:
            if measure.calls == 0:
                measure.rss_start = start
            measure.rss_peak = max(measure.rss_peak, start)
            self._open.append(measure)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield measure
        finally:
            measure.wall += time.perf_counter() - wall
            measure.cpu += time.process_time() - cpu
            measure.calls += 1
            self.sample()
            with self._lock:
                self._open.remove(measure)


@contextlib.contextmanager
def wrapped(module, steps: dict[str, Callable[..., str]], sampler: RssSampler, parent: Measure):
    """Time the module's functions `steps` (name -> label of a call) as sub-steps of `parent`."""
    originals = {name: getattr(module, name) for name in steps}

    def wrap(name: str, original: Callable) -> Callable:
        def timed(*args, **kwargs):
            with sampler.measure(parent.sub(steps[name](*args, **kwargs))):
                return original(*args, **kwargs)

        return timed

    for name, original in originals.items():
        setattr(module, name, wrap(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


@contextlib.contextmanager
def cdm_step_rss(sampler: RssSampler, parent: Measure):
    """Wrap build_cdm's step timer so every CDM step also gets CPU time and peak RSS."""
    base = cdm_build_module._Timer

    class Timer(base):
        @contextlib.contextmanager
        def step(self, name: str):
            with sampler.measure(parent.sub(name)), super().step(name):
                yield

    cdm_build_module._Timer = Timer
    try:
        yield
    finally:
        cdm_build_module._Timer = base


@contextlib.contextmanager
def maybe_profiled(enabled: bool, label: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(f"\n--- cProfile of {label} (30 costliest by cumulative time) ---")
        print(out.getvalue())


# --------------------------------------------------------------------------- the run


@dataclass
class SizeResult:
    persons: int
    started: datetime
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gen: Measure = field(default_factory=lambda: Measure("generate"))
    gen_rows: int = 0
    gen_bytes: int = 0
    landed_files: int = 0
    landed_bytes: int = 0
    landed_kinds: dict[str, int] = field(default_factory=dict)
    landed_gzip: bool = False
    phases: dict[str, Measure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, Measure] = field(default_factory=dict)
    lake_bytes: int = 0
    published_bytes: int = 0
    disk_peak: int = 0  # file system bytes used above the start of the run, at the peak
    dq: dict = field(default_factory=dict)
    dq_failures: list[str] = field(default_factory=list)
    error: str | None = None


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def table_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "__".join(parts)).lower()


def file_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".ndjson"):
        return "ndjson"
    return "other"


# Phases in the order they run; --start-at skips those before it (a resumed run, --resume)
RUN_ORDER = ("ingest", "staging", "linkage", "cdm", "dq", "publish")


@dataclass
class Run:
    """One size's run: its paths and settings, and the result the phases fill in."""

    result: SizeResult
    args: argparse.Namespace
    sampler: RssSampler
    registry: SourceRegistry
    work: Path
    landing: Path

    @property
    def lake_dir(self) -> Path:
        return self.work / "lake"

    @property
    def warehouse(self) -> Path:
        return self.work / "warehouse"

    @property
    def resumed(self) -> bool:
        return self.args.resume is not None

    def phase(self, name: str) -> Measure:
        measure = Measure(name)
        self.result.phases[name] = measure
        print(f"[{self.result.persons:,} persons] {name} ...", flush=True)
        return measure

    def cdm_rows(self) -> int | None:
        cdm = self.result.phases.get("cdm build")
        return cdm.rows if cdm is not None else None


def run_size(persons: int, root: Path, args: argparse.Namespace, sampler: RssSampler) -> SizeResult:
    result = SizeResult(persons, datetime.now(UTC), os.getloadavg())
    sampler.reset_disk()
    work = args.resume or root / f"persons_{persons}"
    out = work / "generated"
    work.mkdir(parents=True, exist_ok=args.resume is not None)
    os.chdir(work)  # DuckDB in-memory databases spill to ./.tmp: keep that in the scratch dir

    if args.population:  # generated once beforehand (rwe generate): reused, read only
        out = args.population
        print(f"\n[{persons:,} persons] reusing the population in {out}", flush=True)
    elif args.resume:
        print(f"\n[{persons:,} persons] reusing the population generated in {out}", flush=True)
    else:
        print(f"\n[{persons:,} persons] generating in {out} ...", flush=True)
        with sampler.measure(result.gen, release=True):
            report = generate(out, persons, seed=args.seed, compress=args.gzip)
        result.gen_rows, result.gen_bytes = report.rows_written, report.bytes_written
    registry = load_registry()
    if args.sources:
        registry = SourceRegistry(tuple(registry.get(name) for name in args.sources))
    run = Run(result, args, sampler, registry, work, out / "landing")
    _count_landed(run)
    if args.resume:
        skipped = RUN_ORDER[: RUN_ORDER.index(args.start_at)]
        result.notes["resumed"] = f"{work} at {args.start_at}; not run: {', '.join(skipped) or 'none'}"
    phases = {"ingest": _ingest, "staging": _staging, "linkage": _linkage, "cdm": _cdm, "dq": _dq}
    phases["publish"] = _publish
    try:
        for name in RUN_ORDER[RUN_ORDER.index(args.start_at) :]:
            phases[name](run)
            _print_phase(run, name)  # as it ends: a run killed later still leaves its figures in the log
        result.lake_bytes = dir_bytes(run.lake_dir)
    except Exception as error:  # report what ran, then the failure; the baselines still run
        result.error = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    try:
        if not args.no_baselines:
            _baselines(run)
    except Exception as error:
        result.error = (result.error + "; " if result.error else "") + f"baseline: {error}"
        traceback.print_exc()
    finally:
        os.chdir(root)
        result.load_after = os.getloadavg()
        result.disk_peak = sampler.disk_peak - sampler.disk_start
    return result


def _print_phase(run: Run, name: str) -> None:
    measure = list(run.result.phases.values())[-1]
    disk = (run.sampler.disk_peak - run.sampler.disk_start) / 1e9
    print(f"[{run.result.persons:,} persons] {name} done (disk peak so far {disk:,.1f} GB)")
    print(line(measure.name, measure), flush=True)


def _count_landed(run: Run) -> None:
    result = run.result
    landed = [p for name in run.registry.names for p in (run.landing / name).rglob("*") if p.is_file()]
    result.landed_files = len(landed)
    result.landed_bytes = sum(p.stat().st_size for p in landed)
    result.landed_gzip = any(p.name.endswith((".csv.gz", ".ndjson.gz")) for p in landed)
    for path in landed:
        result.landed_kinds[file_kind(path)] = result.landed_kinds.get(file_kind(path), 0) + 1
    print(
        f"[{result.persons:,} persons] generated {result.landed_files} files, "
        f"{result.landed_bytes / 1e6:,.0f} MB in {result.gen.wall:.1f} s",
        flush=True,
    )


def _ingest(run: Run) -> None:
    """1. raw ingest: every landed batch of every registered source."""
    ingest = run.phase("ingest")
    batches = quarantined = failed = 0
    with run.sampler.measure(ingest, release=True), maybe_profiled(run.args.profile == "ingest", "ingest"):
        for source in run.registry:
            found, rejected = list_batches(run.landing, source.name)
            if rejected:
                run.result.notes[f"rejected batch names ({source.name})"] = ", ".join(rejected)
            if not found:
                continue
            sub = ingest.sub(f"{source.name} ({len(found)} batch(es))")
            sub.rows = 0
            with run.sampler.measure(sub):
                for batch in found:
                    batch_report = ingest_batch(run.lake_dir, run.landing, source, batch.batch_id)
                    batches += 1
                    sub.rows += sum(f.total_stored for f in batch_report.files)
                    quarantined += sum(f.rows_quarantined for f in batch_report.files)
                    failed += len(batch_report.failed)
    ingest.rows = sum(s.rows or 0 for s in ingest.subs)
    run.result.notes["ingest"] = (
        f"{batches} batch(es); {ingest.rows:,} rows stored, {quarantined:,} quarantined, "
        f"{failed} file(s) failed"
    )


def _staging(run: Run) -> None:
    """2. staging, then genomics staging; a resumed run rebuilds every table (no incremental plan)."""
    staging = run.phase("staging")
    with (
        run.sampler.measure(staging, release=True),
        wrapped(staging_module, STAGING_STEPS, run.sampler, staging),
        wrapped(staging_accounting, ACCOUNTING_STEPS, run.sampler, staging),
        maybe_profiled(run.args.profile == "staging", "staging"),
    ):
        con = staging_connection(run.args.staging_memory_limit, run.args.threads)
        staging_report = build_staging(run.lake_dir, run.registry, con, incremental=not run.resumed)
        con.close()
        with run.sampler.measure(staging.sub("genomics staging (variants, specimens)")):
            genomics = stage_genomics_sources(run.lake_dir, run.registry)
    variants = sum(r.variants + r.specimens for r in genomics.values() if r)
    staging.rows = sum(staging_report.row_counts.values()) + variants
    recon = staging_report.reconciliation
    run.result.notes["staging"] = (
        f"{sum(r.raw_rows for r in recon):,} raw rows read -> {staging.rows:,} staged, "
        f"{sum(r.quarantined for r in recon):,} quarantined, {sum(r.merged for r in recon):,} merged; "
        + ", ".join(f"{t} {n:,}" for t, n in staging_report.row_counts.items())
    )


def _linkage(run: Run) -> None:
    """3. linkage, as defs/linkage/assets.py does it, with the public demo key."""
    linkage = run.phase("linkage")
    steps = {
        "build_tokens": lambda *a, **k: "tokens (DuckDB HMAC + Bloom filters)",
        "_model": lambda *a, **k: "train or load the model (Splink EM)",
        "_score": lambda *a, **k: "score candidate pairs (Splink)",
        "_write": lambda *a, **k: "write Delta linkage tables",
    }
    with (
        run.sampler.measure(linkage, release=True),
        wrapped(crosswalk_module, steps, run.sampler, linkage),
        maybe_profiled(run.args.profile == "linkage", "linkage"),
    ):
        con = staging_connection(run.args.memory_limit, run.args.threads)
        register_staged_persons(con, run.lake_dir)
        crosswalk = build_crosswalk(con, run.lake_dir, DEMO_KEY)
        con.close()
    rest = linkage.wall - sum(s.wall for s in linkage.subs)
    linkage.sub("clustering, ids, quality (rest)").wall = rest
    linkage.rows = crosswalk.num_rows
    linked = pc.count_distinct(crosswalk.column("person_id")).as_py()
    run.result.notes["linkage"] = f"{crosswalk.num_rows:,} source records -> {linked:,} persons"


def _cdm(run: Run) -> None:
    """4. the CDM build; a resumed run builds it whole (no reuse, no incremental plan)."""
    cdm = run.phase("cdm build")
    with (
        run.sampler.measure(cdm, release=True),
        cdm_step_rss(run.sampler, cdm),
        maybe_profiled(run.args.profile == "cdm", "cdm build"),
    ):
        cdm_report = build_cdm(
            run.lake_dir,
            REPO_DIR / "vocab",
            run.warehouse,
            memory_limit=run.args.cdm_memory_limit,
            threads=run.args.threads,
            reuse_unchanged=not run.resumed,
            incremental_build=not run.resumed,
        )
    cdm.rows = sum(cdm_report.row_counts.values())
    for sub in cdm.subs:  # build_cdm's own step_seconds are the step times
        sub.wall = cdm_report.step_seconds.get(sub.name, sub.wall)
        tables = CDM_STEP_TABLES.get(sub.name, (sub.name,))
        if any(t in cdm_report.row_counts for t in tables):
            sub.rows = sum(cdm_report.row_counts.get(t, 0) for t in tables)
    resumed = f"; resumed a failed build at {cdm_report.resumed_from}" if cdm_report.resumed_from else ""
    run.result.notes["cdm"] = (
        f"{cdm.rows:,} CDM rows, {cdm_report.unmapped_rows:,} unmapped event rows, "
        f"{cdm_report.visits_merged:,} visits merged{resumed}; "
        + ", ".join(f"{t} {n:,}" for t, n in cdm_report.row_counts.items() if n)
    )


def _dq(run: Run) -> None:
    """5. the data-quality suite on build.duckdb, its results written beside the CDM (as the dq asset
    does): publishing refuses a build without them."""
    dq = run.phase("dq checks")
    with (
        run.sampler.measure(dq, release=True),
        maybe_profiled(run.args.profile == "dq", "dq checks"),
        duckdb.connect(str(run.warehouse / "build.duckdb")) as con,
    ):
        con.execute(f"SET memory_limit = '{run.args.memory_limit}'")
        con.execute(f"SET threads = {int(run.args.threads)}")
        checks = run_checks(con, "cdm", "results", run_id="bench")
    dq.rows = run.cdm_rows()
    result = run.result
    result.dq = {k: v for k, v in summarize(checks).items() if not k.startswith("by_")}
    result.dq_failures = [
        f"{r.status} {r.check_id}: "
        + (r.error_message or "" if r.is_error else f"{r.num_violated_rows}/{r.num_denominator_rows}")
        for r in checks
        if r.failed or r.is_error
    ]


def _publish(run: Run) -> None:
    """6. publish."""
    pub = run.phase("publish")
    with run.sampler.measure(pub, release=True), maybe_profiled(run.args.profile == "publish", "publish"):
        published = publish(run.warehouse)
    pub.rows = run.cdm_rows()
    run.result.published_bytes = published.stat().st_size
    run.result.notes["publish"] = (
        f"copied and fsynced {run.result.published_bytes / 1e6:,.0f} MB "
        f"({run.result.published_bytes / 1e6 / max(pub.wall, 1e-9):,.0f} MB/s)"
    )


def _baselines(run: Run) -> None:
    if (run.lake_dir / "staging").is_dir():
        run.result.baselines["a"] = bare_staging_load(
            run.lake_dir, run.work / "bare_staging.duckdb", run.args, run.sampler
        )
    run.result.baselines["b"] = bare_landing_load(
        run.landing, run.registry.names, run.work / "bare_landing.duckdb", run.args, run.sampler
    )


def bare_staging_load(lake_dir: Path, target: Path, args, sampler: RssSampler) -> Measure:
    """DuckDB only: every staging Delta table -> a table of a new DuckDB file (CREATE TABLE AS)."""
    print("  baseline a: bare staging load ...", flush=True)
    measure = Measure("a. bare staging load")
    measure.rows = 0
    with sampler.measure(measure, release=True):
        target.unlink(missing_ok=True)  # a resumed run's earlier baseline
        con = duckdb.connect(str(target))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET threads = {int(args.threads)}")
        con.execute("SET preserve_insertion_order = false")
        for path in sorted((lake_dir / "staging").iterdir()):
            if not DeltaTable.is_deltatable(str(path)):
                continue
            con.register("delta_source", DeltaTable(str(path)).to_pyarrow_dataset())
            name = table_name("staging", path.name)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM delta_source')
            con.unregister("delta_source")
            measure.rows += con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        con.execute("CHECKPOINT")
        con.close()
    return measure


def bare_landing_load(landing: Path, sources, target: Path, args, sampler: RssSampler) -> Measure:
    """DuckDB only: every landed CSV (all_varchar) and NDJSON file (one JSON column per line) -> a table
    of a new DuckDB file. Rows DuckDB cannot parse are skipped (ignore_errors), not quarantined."""
    print("  baseline b: bare landing load ...", flush=True)
    measure = Measure("b. bare landing load")
    measure.rows = 0
    with sampler.measure(measure, release=True):
        target.unlink(missing_ok=True)  # a resumed run's earlier baseline
        con = duckdb.connect(str(target))
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET threads = {int(args.threads)}")
        con.execute("SET preserve_insertion_order = false")
        for path in sorted(p for name in sources for p in (landing / name).rglob("*") if p.is_file()):
            kind = file_kind(path)
            if kind == "csv":
                reader = "read_csv(?, header = true, all_varchar = true, ignore_errors = true)"
            elif kind == "ndjson":
                reader = "read_json_objects(?, format = 'newline_delimited', ignore_errors = true)"
            else:
                continue
            name = table_name(*path.relative_to(landing).parts)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM {reader}', [str(path)])
            measure.rows += con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        con.execute("CHECKPOINT")
        con.close()
    return measure


# --------------------------------------------------------------------------- printing

HEADER = f"{'phase':<50} {'wall s':>8} {'CPU s':>8} {'rows':>12} {'rows/s':>11} {'peak RSS':>10} {'peak-start':>10}"


def line(label: str, m: Measure | None = None, *, wall: float | None = None, rows: int | None = None) -> str:
    wall = m.wall if wall is None else wall
    rows = (m.rows if m is not None else None) if rows is None else rows
    cpu = f"{m.cpu:8.1f}" if m is not None and m.calls else f"{'':8}"
    count = f"{rows:12,}" if rows is not None else f"{'':12}"
    rate = f"{rows / wall:11,.0f}" if rows is not None and wall > 0 else f"{'':11}"
    if m is not None and m.calls:
        rss = f"{m.rss_peak / MIB:6,.0f} MiB {(m.rss_peak - m.rss_start) / MIB:+6,.0f} MiB"
    else:
        rss = f"{'':21}"
    return f"{label:<50} {wall:8.1f} {cpu} {count} {rate} {rss}"


def print_result(r: SizeResult, args: argparse.Namespace) -> None:
    gb = r.landed_bytes / 1e9
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.landed_kinds.items()))
    print()
    print(f"=== {r.persons:,} persons ===")
    print(f"date       {r.started:%Y-%m-%d %H:%M} UTC")
    print(f"machine    {os.cpu_count()} cores, {_ram_gib():.1f} GiB RAM, {_cpu_model()}")
    print(
        f"software   Python {platform.python_version()}, duckdb {duckdb.__version__}, "
        f"deltalake {deltalake.__version__}, pyarrow {pa.__version__}"
    )
    print(
        f"load avg   {' '.join(f'{x:.2f}' for x in r.load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in r.load_after)} after (1/5/15 min)"
    )
    print(
        f"settings   DuckDB memory_limit {args.memory_limit} (staging {args.staging_memory_limit}, "
        f"CDM build {args.cdm_memory_limit}), "
        f"threads {args.threads}; seed {args.seed}; {'gzip' if r.landed_gzip else 'plain'} landing files; "
        f"sources {', '.join(args.sources) if args.sources else 'all'}"
    )
    print(
        "how        rwe_assets library functions called in one process, not Dagster "
        "(no run/event storage, no asset checks)"
    )
    if args.population:
        print(f"generated  beforehand: reused {args.population}")
    else:
        print(
            f"generated  {r.gen_rows:,} data rows, {r.gen_bytes / 1e6:,.0f} MB in {r.gen.wall:.1f} s "
            f"({r.persons / max(r.gen.wall, 1e-9):,.0f} persons/s; not part of the pipeline; "
            f"peak RSS {r.gen.rss_peak / MIB:,.0f} MiB)"
        )
    print(f"landed     {r.landed_files} files ({kinds}), {r.landed_bytes:,} bytes ({gb:.2f} GB)")
    if r.lake_bytes:
        print(
            f"outputs    lake {r.lake_bytes / 1e6:,.0f} MB (Delta), published rwe.duckdb "
            f"{r.published_bytes / 1e6:,.0f} MB"
        )
    print(f"disk peak  {r.disk_peak / 1e9:,.1f} GB above the start (file system of the scratch dir)")
    print()
    print(HEADER)
    print("-" * len(HEADER))
    labels = {
        "ingest": "1. raw ingest (rows stored)",
        "staging": "2. staging (rows staged)",
        "linkage": "3. linkage (crosswalk rows)",
        "cdm build": "4. cdm build (CDM rows)",
        "dq checks": "5. dq checks (CDM rows checked)",
        "publish": "6. publish (CDM rows)",
    }
    for name, m in r.phases.items():
        failed = r.error and name == list(r.phases)[-1] and not r.dq
        print(line(labels.get(name, name) + (" FAILED" if failed else ""), m))
        for sub in m.subs:
            print(line(f"     {sub.name}", sub))
    pipeline = [
        r.phases[n]
        for n in ("ingest", "staging", "linkage", "cdm build", "dq checks", "publish")
        if n in r.phases
    ]
    total = sum(m.wall for m in pipeline)
    cdm_rows = r.phases["cdm build"].rows if "cdm build" in r.phases else None
    print("-" * len(HEADER))
    done = "publish" in r.phases and r.phases["publish"].calls and r.published_bytes
    print(
        _total_line(
            f"landing -> checked and published ({'phases run' if args.resume else '1-6'})"
            + ("" if done else " INCOMPLETE"),
            pipeline,
            cdm_rows,
        )
    )
    if r.baselines:
        print()
        print("baselines (DuckDB only, new file, same memory_limit and threads)")
        for m in r.baselines.values():
            print(line(m.name, m))
    print()
    for key, note in r.notes.items():
        print(f"{key:<10} {note}")
    if r.dq:
        rate = r.dq["pass_rate"]
        print(
            f"dq         {r.dq['total']} checks: {r.dq['passed']} passed, {r.dq['failed']} failed, "
            f"{r.dq['errors']} errors, {r.dq['not_applicable']} not applicable; "
            f"pass rate of the checks that can fail {'n/a' if rate is None else f'{rate:.1%}'} "
            f"(all checks: {r.dq.get('dqd_pass_rate') or 0:.1%})"
        )
        for failure in r.dq_failures[:15]:
            print(f"             {failure}")
        if len(r.dq_failures) > 15:
            print(f"             ... and {len(r.dq_failures) - 15} more")
    a, b = r.baselines.get("a"), r.baselines.get("b")
    if a and "cdm build" in r.phases and r.phases["cdm build"].rows is not None:
        cdm = r.phases["cdm build"].wall
        print(f"ratio      cdm build / bare staging load = {cdm:.1f} / {a.wall:.1f} s = {cdm / a.wall:.1f}x")
    if b and done:
        print(
            f"ratio      landing -> published / bare landing load = {total:.1f} / {b.wall:.1f} s "
            f"= {total / b.wall:.1f}x"
        )
    if r.error:
        print(f"FAILED     {r.error}")


def _total_line(label: str, measures: list[Measure], rows: int | None) -> str:
    total = Measure(label, wall=sum(m.wall for m in measures), cpu=sum(m.cpu for m in measures))
    total.calls = 1
    total.rss_start = measures[0].rss_start
    total.rss_peak = max(m.rss_peak for m in measures)
    total.rows = rows
    return line(label, total)


def print_summary(results: list[SizeResult]) -> None:
    print()
    print("=== summary ===")
    head = f"{'persons':>9} {'landed GB':>10} {'raw rows':>12} {'staged rows':>12} {'CDM rows':>12}"
    head += f" {'ingest s':>9} {'staging s':>9} {'link s':>7} {'cdm s':>7} {'publ s':>7} {'dq s':>7}"
    head += f" {'total s':>8} {'peak RSS':>9} {'dq pass':>8}"
    print(head)
    for r in results:
        p = r.phases

        def wall(name: str, p=p) -> str:
            return f"{p[name].wall:.1f}" if name in p else "-"

        def rows(name: str, p=p) -> str:
            return f"{p[name].rows:,}" if name in p and p[name].rows is not None else "-"

        total = sum(p[n].wall for n in ("ingest", "staging", "linkage", "cdm build", "publish") if n in p)
        peak = max((m.rss_peak for m in p.values()), default=0)
        rate = r.dq.get("pass_rate") if r.dq else None
        row = f"{r.persons:>9,} {r.landed_bytes / 1e9:>10.2f} {rows('ingest'):>12} {rows('staging'):>12}"
        row += f" {rows('cdm build'):>12} {wall('ingest'):>9} {wall('staging'):>9} {wall('linkage'):>7}"
        row += f" {wall('cdm build'):>7} {wall('publish'):>7} {wall('dq checks'):>7} {total:>8.1f}"
        row += f" {peak / MIB:>5,.0f} MiB {'-' if rate is None else f'{rate:.1%}':>8}"
        print(row)


def _ram_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for text in cpuinfo:
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def in_repo(path: Path) -> bool:
    return path.resolve().is_relative_to(REPO_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[10_000], help="population sizes")
    parser.add_argument("--workdir", type=Path, help="parent of the scratch dir (default: system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir of every size")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit (default 8GB)")
    parser.add_argument(
        "--staging-memory-limit", default="3GB", help="DuckDB memory_limit of the staging build (default 3GB)"
    )
    parser.add_argument(
        "--cdm-memory-limit", default="3GB", help="DuckDB memory_limit of the CDM build (default 3GB)"
    )
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument("--gzip", action="store_true", help="generate gzipped CSV and NDJSON landing files")
    parser.add_argument(
        "--sources", nargs="+", help="ingest and build only these registered sources (default: all)"
    )
    parser.add_argument(
        "--population",
        type=Path,
        help="reuse a population generated beforehand (`rwe generate --out DIR`; one --persons size, "
        "which only labels the run): nothing is generated, DIR is only read",
    )
    parser.add_argument(
        "--profile", choices=PHASES, help="run this phase under cProfile (slows it: its times are then off)"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="work in the scratch dir of one size kept by an earlier run (--keep: DIR/persons_N): its "
        "lake and warehouse are reused, from --start-at on (one --persons size, which only labels the run)",
    )
    parser.add_argument(
        "--start-at",
        choices=RUN_ORDER,
        default=RUN_ORDER[0],
        help="with --resume: the first phase to run (staging and the CDM build then rebuild whole)",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the two bare DuckDB loads (minutes at 1M persons)"
    )
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.persons):
        parser.error("--persons: expected sizes of at least 1")
    if args.population and len(args.persons) != 1:
        parser.error("--population: give one --persons size (the population's)")
    if args.resume and (len(args.persons) != 1 or not (args.resume / "lake").is_dir()):
        parser.error("--resume: give one --persons size and a kept DIR/persons_N (with a lake/ inside)")
    if args.resume and not args.population and not (args.resume / "generated" / "landing").is_dir():
        parser.error("--resume: give the run's --population DIR again (no generated/ in the kept dir)")
    if args.start_at != RUN_ORDER[0] and not args.resume:
        parser.error("--start-at: only with --resume (the phases before it need a lake)")
    if args.population:
        args.population = args.population.resolve()
    if args.resume:
        args.resume = args.resume.resolve()
    parent = (args.workdir or Path(tempfile.gettempdir())).resolve()
    if in_repo(parent):
        parser.error(f"--workdir must be outside the repository ({REPO_DIR}): the data is gigabytes")
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rwe-bench-pipeline-", dir=parent))
    print(f"scratch dir {root}")
    print(f"command     {' '.join([Path(sys.executable).name, *sys.argv])}")
    sampler = RssSampler(root)
    sampler.start()
    results = []
    try:
        for persons in args.persons:
            result = run_size(persons, root, args, sampler)
            results.append(result)
            print_result(result, args)
            if not args.keep:
                shutil.rmtree(root / f"persons_{persons}", ignore_errors=True)
            if result.error:
                break
        if len(results) > 1:
            print_summary(results)
    finally:
        sampler.stop()
        os.chdir(REPO_DIR)
        if args.keep:
            print(f"kept scratch dir: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
