"""Incremental refresh benchmark (issue 26): a full build against landing a small update and rebuilding.

    python bench/incremental.py [--persons 100000] [--fraction 0.01] [--workdir DIR] [--keep]
                                [--memory-limit 8GB] [--threads 2] [--generated DIR] [--check-staging]

In this one process:

1. generates a population (seed 42) and an update batch of it (rwe_assets.synthetic.update:
   fraction x persons new persons, new events, corrections, retractions, claim adjustments and voids);
   not timed as part of the pipeline;
2. lands the base and runs the pipeline with the library functions the assets call (as
   rwe_assets_tests/crash_harness.py does): raw ingest of every batch not ingested before with the
   same files (the landing sensor's cursor: earlier batches are not visited again), staging (genomics
   included), linkage (demo key), the CDM build, the DQD checks, publish: the full build;
3. lands the update and runs the same pipeline again: the incremental refresh, landing -> published;
4. prints wall and CPU seconds of each phase as it ends, then per phase for both, and the ratios
   incremental / full (the issue asks for at most 0.15 at 100k persons with a 1% batch); the staging note says which path ran and why
   (lib/staging/incremental.py), the checks note how they counted (lib/quality/incremental.py);
5. with --check-staging, stages the same lake again as a full build and compares every staging table
   row for row with what the incremental run left (staged_digests), printing both staging times;
6. with --check-cdm, builds the CDM of the same lake again in full (what the update cost before the
   incremental CDM build, lib/cdm/incremental.py) and compares it with the update's by the comparison
   tool, every table, printing both CDM times (wall and CPU) and their ratio.

--generated DIR reuses the base/ and update/ folders an earlier run generated (with --keep).

Wall times depend on the machine's load: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from rwe_assets.lib import publish, raw_ingest
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.genomics.staging import stage_genomics_sources
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.linkage.crosswalk import DEMO_KEY, build_crosswalk, register_staged_persons
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets.lib.quality.incremental import recorded_mode
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging import build as staging_build
from rwe_assets.lib.staging import incremental
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate
from rwe_assets.synthetic.update import generate_update

SEED = 42
PHASES = ("ingest", "staging", "linkage", "cdm", "checks", "publish")


@dataclass
class Run:
    label: str
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.wall.values())

    def timed(self, phase: str, work: Callable[[], str | None]) -> None:
        print(f"  [{self.label}] {phase} ...", flush=True)
        wall, cpu = time.perf_counter(), time.process_time()
        note = work()
        self.wall[phase] = time.perf_counter() - wall
        self.cpu[phase] = time.process_time() - cpu
        if note:
            self.notes[phase] = note
        print(f"  [{self.label}] {phase}: {self.wall[phase]:.1f} s wall, {self.cpu[phase]:.1f} s CPU, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip


def pipeline(data_dir: Path, label: str, memory_limit: str, threads: int, seen: dict[str, str]) -> Run:
    """One landing -> published run over everything landed that the lake has not ingested yet.
    `seen` (source/partition key -> fingerprint) plays the landing sensor's cursor: a batch ingested with
    these files is not visited again (the sensor starts no run for it), so its files are not hashed."""
    lake, landing, warehouse = data_dir / "lake", data_dir / "landing", data_dir / "warehouse"
    registry, run = load_registry(), Run(label)

    def ingest() -> str:
        stored = 0
        for source in registry:
            for batch in list_batches(landing, source.name)[0]:
                if seen.get(f"{source.name}/{batch.partition_key}") == batch.fingerprint:
                    continue
                report = raw_ingest.ingest_batch(lake, landing, source, batch.batch_id)
                stored += sum(f.total_stored for f in report.files)
                seen[f"{source.name}/{batch.partition_key}"] = batch.fingerprint
        return f"{stored:,} raw rows stored"

    def staging() -> str:
        con = staging_build.staging_connection(memory_limit, threads)
        report = staging_build.build_staging(lake, registry, con)
        con.close()
        stage_genomics_sources(lake, registry)
        changed = f", {sum(report.touched.values()):,} rows changed" if report.touched else ""
        return f"{sum(report.row_counts.values()):,} staged rows, {report.mode} ({report.reason}){changed}"

    def linkage() -> str:
        con = staging_build.staging_connection(memory_limit, threads)
        register_staged_persons(con, lake)
        crosswalk = build_crosswalk(con, lake, DEMO_KEY)
        con.close()
        return f"{crosswalk.num_rows:,} crosswalk rows"

    def cdm() -> str:
        report = cdm_build.build_cdm(
            lake, REPO_DIR / "vocab", warehouse, memory_limit=memory_limit, threads=threads
        )
        rebuilt = (
            f", {report.persons_rebuilt:,} persons rebuilt" if report.persons_rebuilt is not None else ""
        )
        slowest = sorted(report.step_seconds.items(), key=lambda item: -item[1])[:6]
        steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in slowest)
        return (
            f"{sum(report.row_counts.values()):,} CDM rows, {report.mode} ({report.mode_reason}){rebuilt}; "
            f"slowest steps (wall s): {steps}"
        )

    def checks() -> str:
        with duckdb.connect(str(warehouse / "build.duckdb")) as con:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET threads = {int(threads)}")
            results = run_checks(con, "cdm", "results", run_id=f"bench-{label}")
            counted = recorded_mode(con, f"bench-{label}")
        per_person = (
            f", {counted.merged_checks} merged over {counted.persons:,} persons" if counted.persons else ""
        )
        return f"{len(results)} checks, {sum(r.failed for r in results)} failed, counted {counted.mode}{per_person}"

    def publish_build() -> str:
        return f"published {publish.publish(warehouse).stat().st_size / 1e6:,.0f} MB"

    for phase, work in zip(PHASES, (ingest, staging, linkage, cdm, checks, publish_build), strict=True):
        run.timed(phase, work)
    return run


def check_staging(lake: Path, memory_limit: str, threads: int, incremental_seconds: float) -> bool:
    """Stage the lake again as a full build and compare it, table by table, with the incremental result."""
    stepwise = incremental.staged_digests(lake)
    con = staging_build.staging_connection(memory_limit, threads)
    wall, cpu = time.perf_counter(), time.process_time()
    staging_build.build_staging(lake, load_registry(), con, incremental=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    con.close()
    full = incremental.staged_digests(lake)
    differing = [name for name in full if full[name] != stepwise[name]]
    print(f"full staging of the same lake: {wall:.1f} s wall, {cpu:.1f} s CPU; incremental staging "
          f"{incremental_seconds:.1f} s wall: ratio {incremental_seconds / wall:.2f}")  # fmt: skip
    print("staging tables equal a full build: " + ("yes" if not differing else f"NO: {differing}"))
    return not differing


def check_cdm(data_dir: Path, memory_limit: str, threads: int, update: Run) -> bool:
    """Build the CDM of the same lake in full and compare it with the update's, every table."""
    full_dir = data_dir / "warehouse_full"
    wall, cpu = time.perf_counter(), time.process_time()
    cdm_build.build_cdm(
        data_dir / "lake", REPO_DIR / "vocab", full_dir, memory_limit=memory_limit, threads=threads,
        incremental_build=False,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    comparison = compare_cdms(data_dir / "warehouse" / "build.duckdb", full_dir / "build.duckdb")
    print(f"full CDM build of the same lake: {wall:.1f} s wall, {cpu:.1f} s CPU; the update's CDM build "
          f"{update.wall['cdm']:.1f} s wall, {update.cpu['cdm']:.1f} s CPU: ratio {update.wall['cdm'] / wall:.2f} "
          f"(wall), {update.cpu['cdm'] / cpu:.2f} (CPU)")  # fmt: skip
    print(
        "CDM equals a full build: " + ("yes" if comparison.same else "NO\n" + format_comparison(comparison))
    )
    return comparison.same


def land(generated: Path, data_dir: Path) -> None:
    shutil.copytree(generated / "landing", data_dir / "landing", dirs_exist_ok=True)


def landed_rows(generated: Path) -> int:
    report = generated / "truth" / "report.json"
    return int(json.loads(report.read_text())["rows_written"])


def print_runs(full: Run, incremental: Run, persons: int, base_rows: int, update_rows: int) -> None:
    print(f"\n{persons:,} persons: base {base_rows:,} landed rows, update {update_rows:,} landed rows")
    print(
        f"{'phase':<10} {'full wall s':>12} {'CPU s':>8} {'update wall s':>14} {'CPU s':>8} "
        f"{'ratio wall':>11} {'ratio CPU':>10}"
    )
    for phase in PHASES:
        print(
            f"{phase:<10} {full.wall[phase]:12.1f} {full.cpu[phase]:8.1f} {incremental.wall[phase]:14.1f} "
            f"{incremental.cpu[phase]:8.1f} {_ratio(incremental.wall[phase], full.wall[phase]):11.2f} "
            f"{_ratio(incremental.cpu[phase], full.cpu[phase]):10.2f}"
        )
    ratio = incremental.total / full.total
    cpu_full, cpu_update = sum(full.cpu.values()), sum(incremental.cpu.values())
    print(
        f"{'total':<10} {full.total:12.1f} {cpu_full:8.1f} {incremental.total:14.1f} {cpu_update:8.1f} "
        f"{ratio:11.2f} {_ratio(cpu_update, cpu_full):10.2f}"
    )
    verdict = "meets" if ratio <= 0.15 else "misses"
    print(f"incremental landing -> published = {ratio:.0%} of the full build ({verdict} the 15% target)")
    for run in (full, incremental):
        print(f"  {run.label}: " + "; ".join(f"{k} {v}" for k, v in run.notes.items()))


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--memory-limit", default="8GB")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--generated", type=Path, help="reuse base/ and update/ generated before")
    parser.add_argument("--check-staging", action="store_true", help="compare staging with a full build")
    parser.add_argument("--check-cdm", action="store_true", help="compare the CDM with a full build")
    args = parser.parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="rwe-bench-incremental-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}; scratch {root}", flush=True)
    try:
        generated = args.generated or root
        base, update, data = generated / "base", generated / "update", root / "data"
        if not args.generated:
            started = time.perf_counter()
            generate(base, args.persons, seed=SEED, workers=2 if args.persons >= 50_000 else 1)
            generate_update(base, update, fraction=args.fraction)
            print(f"generated base and update in {time.perf_counter() - started:.1f} s", flush=True)
        os.chdir(root)  # DuckDB spill files stay in the scratch folder
        land(base, data)
        seen: dict[str, str] = {}
        full = pipeline(data, "full", args.memory_limit, args.threads, seen)
        land(update, data)
        update_run = pipeline(data, "update", args.memory_limit, args.threads, seen)
        print_runs(full, update_run, args.persons, landed_rows(base), landed_rows(update))
        if args.check_staging and not check_staging(
            data / "lake", args.memory_limit, args.threads, update_run.wall["staging"]
        ):
            return 1
        if args.check_cdm and not check_cdm(data, args.memory_limit, args.threads, update_run):
            return 1
    finally:
        print(f"load average after: {os.getloadavg()}")
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
