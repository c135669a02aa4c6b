"""Build a small CDM from hand-written extracts, the whole way: land, ingest, stage, link, build."""

from __future__ import annotations

from pathlib import Path

from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.staging.test_lifecycle import stage


def build(tmp_path: Path, registry, source: str, batches: list[dict]) -> Path:
    """Land, ingest and stage the batches in turn, link, and build the CDM; returns the DuckDB file."""
    lake_dir, _ = stage(tmp_path, registry, source, batches)
    con = staging_connection()
    register_staged_persons(con, lake_dir)  # as the linkage asset does: persons without PII too
    build_crosswalk(con, lake_dir, "test-key")
    return build_cdm(lake_dir, REPO_DIR / "vocab", tmp_path / "warehouse").path
