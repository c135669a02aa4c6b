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
            "owner": "test FHIR server",
            "ignore_files": ["log.ndjson"],
            "entities": [{"name": "patient"}, {"name": "condition"}],
        },
    ]
}


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
