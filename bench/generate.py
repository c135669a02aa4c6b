"""Synthetic population generator benchmark: persons/s, rows, bytes and peak memory.

    python bench/generate.py [--persons 10000 100000] [--seed 1] [--workers 1] [--gzip]
                             [--chunk-size 10000] [--workdir DIR] [--keep]

For each population size: rwe_assets.synthetic.generate() into a fresh work dir under /tmp (or
--workdir), timed with the wall clock. Peak RSS is sampled every 20 ms by a background thread from
/proc/<pid>/status (VmRSS) of this process plus its worker processes (--workers > 1), so it is the
peak of the run, not of the interpreter's life. Prints persons/s, rows written (data lines of every
landing file), rows/s, bytes written, MB/s, clinical events per person and peak RSS. The work dir is
deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rwe_assets.synthetic import generate

SAMPLE_INTERVAL_S = 0.02


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out.extend(int(child) for child in handle.read().split())
    except OSError:
        return out
    return out


class PeakRss:
    """Samples the summed VmRSS of this process and its descendants in a background thread."""

    def __init__(self):
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            pids, seen = [me], set()
            while pids:
                pid = pids.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                pids.extend(_children(pid))
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in seen))
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(persons: int, args) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"rwe-generate-{persons}-", dir=args.workdir))
    try:
        with PeakRss() as rss:
            started = time.perf_counter()
            report = generate(
                root,
                persons,
                args.seed,
                chunk_size=args.chunk_size,
                compress=args.gzip,
                workers=args.workers,
            )
            elapsed = time.perf_counter() - started
        return {
            "persons": persons,
            "seconds": elapsed,
            "persons_per_s": persons / elapsed,
            "rows": report.rows_written,
            "rows_per_s": report.rows_written / elapsed,
            "bytes": report.bytes_written,
            "mb_per_s": report.bytes_written / 1e6 / elapsed,
            "events_per_person": report.events_per_person,
            "files": len(report.files),
            "peak_rss_mib": rss.peak_kib / 1024,
            "out": str(root),
        }
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"workers={args.workers} chunk={args.chunk_size} gzip={args.gzip} seed={args.seed}"
    )
    print(
        f"{'persons':>10} {'wall s':>8} {'persons/s':>10} {'rows':>13} {'rows/s':>11} {'MB':>9} {'MB/s':>7} "
        f"{'events/p':>9} {'files':>6} {'peak RSS MiB':>13}"
    )
    for persons in args.persons:
        r = run(persons, args)
        print(
            f"{r['persons']:>10,} {r['seconds']:>8.1f} {r['persons_per_s']:>10,.0f} {r['rows']:>13,} "
            f"{r['rows_per_s']:>11,.0f} {r['bytes'] / 1e6:>9,.1f} {r['mb_per_s']:>7.1f} {r['events_per_person']:>9.1f} "
            f"{r['files']:>6} {r['peak_rss_mib']:>13,.0f}" + (f"  kept: {r['out']}" if args.keep else ""),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
