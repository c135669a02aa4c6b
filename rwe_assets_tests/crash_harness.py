"""One whole pipeline run over a data directory, as a separate process the crash test can SIGKILL.

    python -m rwe_assets_tests.crash_harness DATA_DIR [POINT] [--dagster]

Runs raw ingest of every landed batch, staging, linkage (demo key), the CDM build, the DQD suite and
publish, with the library functions the assets call. With POINT, the process kills itself with
SIGKILL (no cleanup, no exception handlers) at that point; POINTS names where.

With --dagster it runs `rwe ingest` itself (rwe_assets.cli.main), Dagster runs in-process against
the instance of DAGSTER_HOME, so a kill leaves a STARTED run holding pool slots, and the next start
must recover from it with no manual step. Exit codes are the command's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb

from rwe_assets.lib import lake, publish, raw_ingest
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.genomics.staging import stage_genomics_sources
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.linkage.crosswalk import DEMO_KEY, build_crosswalk, register_staged_persons
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging import build as staging_build
from rwe_assets.settings import REPO_DIR

# point -> (module, function, which call of it dies)
POINTS = {
    "raw_file_write": (lake, "write_deltalake", 2),  # mid-batch: one file's rows written, not the next
    "staging_write": (staging_build, "_overwrite", 3),  # some staging tables replaced, not all
    "cdm_step": (cdm_build, "run_sql", 10),  # inside the CDM build (build.duckdb.partial)
    "publish_swap": (publish.os, "replace", 2),  # after build.duckdb is renamed, before rwe.duckdb is
}


def die_at(point: str) -> None:
    module, name, nth = POINTS[point]
    real, calls = getattr(module, name), [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(module, name, counting)


def stage_and_link(data_dir: Path) -> None:
    """Raw ingest of every landed batch, staging, genomics staging and linkage (as the assets do)."""
    lake_dir, landing = data_dir / "lake", data_dir / "landing"
    registry = load_registry()
    for source in registry:
        for batch in list_batches(landing, source.name)[0]:
            raw_ingest.ingest_batch(lake_dir, landing, source, batch.batch_id)
    staging_build.build_staging(lake_dir, registry)
    stage_genomics_sources(lake_dir, registry)
    con = staging_build.staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, DEMO_KEY)
    con.close()


def run(data_dir: Path) -> None:
    stage_and_link(data_dir)
    build_check_publish(data_dir)


def build_check_publish(data_dir: Path) -> cdm_build.CdmBuildReport:
    """The CDM build of the staged and linked lake, the DQD suite on it, publish; the build's report."""
    warehouse = data_dir / "warehouse"
    report = cdm_build.build_cdm(data_dir / "lake", REPO_DIR / "vocab", warehouse)
    with duckdb.connect(str(warehouse / "build.duckdb")) as db:
        run_checks(db, "cdm", "results", run_id="crash-harness")
    publish.publish(warehouse)
    return report


def run_process(data_dir: Path, point: str | None = None) -> subprocess.CompletedProcess:
    """`run` in a process of its own (killing itself at POINT if given), its output captured."""
    command = [
        sys.executable,
        "-m",
        "rwe_assets_tests.crash_harness",
        str(data_dir),
        *([point] if point else []),
    ]
    return subprocess.run(command, cwd=REPO_DIR, capture_output=True, text=True, timeout=600)


def run_dagster(data_dir: Path) -> int:
    os.environ["RWE_DATA_DIR"] = str(data_dir)
    from rwe_assets.cli import main

    return main(["ingest"])


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--dagster"]
    if len(arguments) > 1:
        die_at(arguments[1])
    if "--dagster" in sys.argv:
        sys.exit(run_dagster(Path(arguments[0])))
    run(Path(arguments[0]))
