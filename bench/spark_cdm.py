"""The CDM build on Spark (local mode) against the DuckDB build, on one staged lake.

    python bench/spark_cdm.py --persons 10000 [--workdir DIR] [--keep] [--memory-limit 3GB] [--threads 2]
    python bench/spark_cdm.py --data-dir DIR       # a data dir already landed, staged and linked

1. Unless --data-dir: lands the bundled samples and a generated population of --persons (seed 42, as
   `rwe demo`), then raw ingest, staging and linkage (demo key) with the library functions.
2. Builds the CDM on DuckDB, then on Spark, each in a fresh child process (`--engine-run`), one after
   the other, both full builds from the same lake (the id maps are the lake's: the first build writes
   them, the second reads them).
3. Compares the two files with the CDM comparison tool (lib/cdm/compare) and prints, per engine: wall
   seconds, CPU seconds of the child and every process it started (the JVM: from /proc, read before the
   child exits), peak RSS of the child and the JVM together, CDM rows, and the seconds per step and on
   which engine each ran.
Wall figures depend on the machine's load: print the load average beside them (done here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    args = _arguments()
    if args.engine_run:
        _engine_run(args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rwe-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir) if args.data_dir else _prepare(work / "data", args.persons)
    try:
        results = {engine: _child(engine, data_dir, work, args) for engine in ("duckdb", "spark")}
        _print(results, data_dir, work)
    finally:
        if not args.keep:  # the population prepared here, the children's results; never --data-dir
            shutil.rmtree(work, ignore_errors=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--data-dir", help="a landed, staged and linked data dir (skips step 1)")
    parser.add_argument("--workdir")
    parser.add_argument("--keep", action="store_true", help="keep --workdir (the prepared population)")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB's memory_limit and Spark's driver heap")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine-run", help=argparse.SUPPRESS)  # the child: one build on this engine
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args()


def _prepare(data_dir: Path, persons: int) -> Path:
    from rwe_assets.cli.demo import land_generated_population, land_sample
    from rwe_assets.settings import REPO_DIR, Settings
    from rwe_assets_tests.crash_harness import stage_and_link

    settings = Settings.from_env({}, data_dir=data_dir, vocab_dir=REPO_DIR / "vocab")
    land_sample(settings)
    land_generated_population(settings, persons)
    started = time.perf_counter()
    stage_and_link(data_dir)
    print(f"ingest, staging and linkage: {time.perf_counter() - started:.1f} s", flush=True)
    return data_dir


def _child(engine: str, data_dir: Path, work: Path, args) -> dict:
    out = work / f"{engine}.json"
    command = [sys.executable, __file__, "--engine-run", engine, "--data-dir", str(data_dir)]
    command += ["--memory-limit", args.memory_limit, "--threads", str(args.threads), "--out", str(out)]
    subprocess.run(command, check=True)
    return json.loads(out.read_text())


def _engine_run(args) -> None:
    """In the child: one full build, timed; CPU and RSS of this process and its children from /proc."""
    from rwe_assets.lib.cdm.build import build_cdm
    from rwe_assets.settings import REPO_DIR

    data_dir, lines = Path(args.data_dir), []
    warehouse = data_dir / f"warehouse_{args.engine_run}"
    shutil.rmtree(warehouse, ignore_errors=True)
    monitor = _Monitor()
    started, load = time.perf_counter(), os.getloadavg()
    report = build_cdm(
        data_dir / "lake", REPO_DIR / "vocab", warehouse, memory_limit=args.memory_limit,
        threads=args.threads, reuse_unchanged=False, incremental_build=False, engine=args.engine_run,
        log=lines.append,
    )  # fmt: skip
    wall = time.perf_counter() - started
    result = {
        "wall": wall, "cpu": monitor.cpu(), "peak_rss_mb": monitor.peak_mb, "load": [load, os.getloadavg()],
        "rows": sum(report.row_counts.values()), "path": str(report.path), "steps": report.step_seconds,
        "log": lines,
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(result))


class _Monitor:
    """CPU seconds of this process and its descendants (the JVM), and their peak RSS together, sampled
    from /proc every 0.2 s (a descendant's CPU is read while it lives: it is not waited for here)."""

    def __init__(self):
        import threading

        self.peak_mb, self._cpu = 0.0, {}
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            rss = 0
            for pid in _family(os.getpid()):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    rss += int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
                    self._cpu[pid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    continue
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            time.sleep(0.2)

    def cpu(self) -> float:
        return sum(self._cpu.values())


def _family(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _print(results: dict, data_dir: Path, work: Path) -> None:
    from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison

    comparison = compare_cdms(Path(results["duckdb"]["path"]), Path(results["spark"]["path"]))
    print(format_comparison(comparison).splitlines()[-1])
    print(f"{'engine':8} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'CDM rows':>10}  load at start / end")
    for engine, r in results.items():
        loads = " / ".join(f"{a[0]:.1f}" for a in r["load"])
        print(f"{engine:8} {r['wall']:8.1f} {r['cpu']:8.1f} {r['peak_rss_mb']:8.0f} {r['rows']:10d}  {loads}")
    print("steps (seconds; engine of each on Spark's side):")
    from rwe_assets.lib.spark.build import engines_of

    engines = engines_of(results["spark"]["log"])
    for step, seconds in results["spark"]["steps"].items():
        duck = results["duckdb"]["steps"].get(step, 0.0)
        print(f"  {step:28} duckdb {duck:7.2f}   spark {seconds:7.2f}  ({engines.get(step, '-')})")
    print(next((line for line in results["spark"]["log"] if "moving tables" in line), ""))


if __name__ == "__main__":
    main()
