"""Shared fixtures: tiny landing zones and lakes, always under tmp_path."""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rwe_assets.lib.sources import SourceRegistry, parse_registry

TINY_REGISTRY = {
    "sources": [
        {
            "name": "clinic",
            "kind": "ehr",
            "format": "csv",
            "extract": "snapshot",
            "owner": "test clinic",
            "entities": [
                {"name": "patients", "required_columns": ["Id", "BIRTHDATE", "FIRST"]},
                {
                    "name": "conditions",
                    "files": ["*conditions*.csv", "*conditions*.csv.gz"],
                    "required_columns": ["PATIENT", "CODE"],
                },
            ],
        },
        {
            "name": "fhir",
            "kind": "ehr",
            "format": "ndjson",
            "extract": "incremental",
            "owner": "test FHIR server",
            "ignore_files": ["log.ndjson"],
            "entities": [{"name": "patient"}, {"name": "condition"}],
        },
    ]
}


def pytest_configure(config):
    """Each test process gets its share of the cores as DuckDB's thread count (RWE_DUCKDB_THREADS,
    unless set; the processes it starts inherit it): `make test`'s two workers on CI's two cores, one
    thread each. Test data is far below a row group per table: a second thread per worker gets no
    parallel work, only scheduling, and the builds took more CPU with it (docs/operations.md, "The
    test suite's time")."""
    if config is not None and not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        return  # xdist's controller: its workers inherit its environment, so it must not set the count
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("RWE_DUCKDB_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def pytest_collection_modifyitems(config, items):
    """The tests on a SparkSession run first, then the tests marked slow (minutes each), each group in
    its own order, then the rest as collected. Collected last (they sit in the top-level files), a slow
    test started near the end of a parallel run while the other worker ran out of tests: minutes of
    one idle core. First, the short tests fill in behind them (`pytest -n 2 --dist worksteal` hands a
    worker with nothing left half of the other's queue, taken from its end). The Spark tests lead so
    that one worker runs them all: each worker that meets one starts its own JVM (the `spark`
    fixture is per process), about 30 CPU seconds of start and warm-up."""
    items.sort(key=start_rank)


def start_rank(item) -> int:
    """0: uses the `spark` fixture, 1: marked slow, 2: the rest."""
    if "spark" in getattr(item, "fixturenames", ()):
        return 0
    return 1 if item.get_closest_marker("slow") else 2


@pytest.fixture
def registry() -> SourceRegistry:
    return parse_registry(TINY_REGISTRY, origin="test registry")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(lake_dir, landing_dir) of an empty data directory."""
    return tmp_path / "data" / "lake", tmp_path / "data" / "landing"


def land(landing_dir: Path, source: str, batch: str, files: dict[str, bytes | str]) -> Path:
    """Write files into landing/<source>/<batch>/; names ending .gz are gzip-compressed."""
    folder = landing_dir / source / batch
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        if name.endswith(".gz"):
            data = gzip.compress(data)
        (folder / name).write_bytes(data)
    return folder


def red_error_checks(result) -> list[str]:
    """The error-severity asset checks of a run that failed: the ones that stop publishing or say a
    layer lost rows. Warning-level checks (DQD value checks, monitoring) describe the data and may
    fail on realistic input."""
    return [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ]


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """What build(folder) returns, built once per run whichever xdist worker asks first: `-n 2
    --dist worksteal` splits a module between the workers, and a module fixture would be built on
    each. The other worker waits on the lock and reads the same folder: callers copy what they change.
    A build that raised leaves no mark, so the next caller builds again (and fails the same way)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's temp folder, the workers' parent
    folder, mark = root / f"built_once_{name}", root / f"built_once_{name}.done"
    with (root / f"built_once_{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not mark.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            mark.write_text(build(folder).relative_to(folder).as_posix())
        return folder / mark.read_text()


@pytest.fixture(scope="session")
def planted_build(tmp_path_factory) -> Path:
    """The generator's four sources (60 persons, seed 7) with bad records planted, ingested and built
    through Dagster once per run (test_pii_sweep.build_and_capture): test_pii_sweep searches every
    output for identifiers, test_pipeline asserts what the graph made of it. Read-only: copy to change."""
    from rwe_assets_tests.test_pii_sweep import build_and_capture

    return built_once(tmp_path_factory, "planted_build", build_and_capture)


@pytest.fixture(scope="session")
def sample_published(tmp_path_factory) -> Path:
    """A data directory with the Synthea CSV sample ingested, built, checked and published by one run
    of the library path (crash_harness, in a process of its own), once per run (built_once): the kill
    tests of defs/test_crash.py start from it, defs/test_gating.py's builds run on a copy. Read-only:
    copy to change."""
    from rwe_assets.cli import SAMPLE_DIR
    from rwe_assets_tests.crash_harness import run_process

    def build(folder: Path) -> Path:
        data = folder / "data"
        shutil.copytree(SAMPLE_DIR / "synthea27", data / "landing" / "ehr_sample" / "synthea27")
        run = run_process(data)
        assert run.returncode == 0, run.stderr[-3000:]
        return data

    return built_once(tmp_path_factory, "sample_published", build)


@pytest.fixture(scope="session")
def incremental_lake(tmp_path_factory) -> Path:
    """incremental_lake.build_updated, once per run (built_once): the tests copy it."""
    from rwe_assets_tests.incremental_lake import build_updated, pinned_code

    def build(folder: Path) -> Path:
        with pinned_code():
            return build_updated(folder)

    return built_once(tmp_path_factory, "incremental_lake", build)
