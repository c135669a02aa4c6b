"""Shared fixtures: tiny landing zones and lakes, always under tmp_path."""

from __future__ import annotations

import gzip
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


def pytest_collection_modifyitems(config, items):
    """The tests marked slow (minutes each) run first, in their own order, then the rest as collected.
    Collected last (they sit in the top-level files), a slow test started near the end of a parallel
    run while the other worker ran out of tests: minutes of one idle core. First, the short tests fill
    in behind them (`pytest -n 2 --dist worksteal` hands a worker with nothing left half of the
    other's queue)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
