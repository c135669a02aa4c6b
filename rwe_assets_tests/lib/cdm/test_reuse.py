"""A CDM build whose inputs are the last build's keeps that build's file (lib/cdm/reuse.py); any
changed input table, vocabulary or priority, or reuse turned off, builds again."""

from __future__ import annotations

import os

import duckdb
import pytest
from deltalake import write_deltalake

from rwe_assets.lib import lake
from rwe_assets.lib.cdm import reuse
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.governance import history
from rwe_assets.lib.linkage.crosswalk import build_crosswalk
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.cdm.test_build import BATCH
from rwe_assets_tests.lib.staging.test_build import ENCOUNTERS_HEADER, encounter, synthea_registry


def link(lake_dir) -> None:
    con = staging_connection()
    table = lake.open_table(lake.table_path(lake_dir, "staging", "person_pii"))
    con.register("person_pii", table.to_pyarrow_dataset())
    build_crosswalk(con, lake_dir, "test-key")
    con.close()


@pytest.fixture
def built(tmp_path):
    registry = synthea_registry()
    lake_dir, landing, warehouse = tmp_path / "lake", tmp_path / "landing", tmp_path / "warehouse"
    land(landing, "site", "b1", BATCH)
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    build_staging(lake_dir, registry)
    link(lake_dir)
    first = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry)
    return registry, lake_dir, landing, warehouse, first


def identity(path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def test_unchanged_inputs_keep_the_last_build(built):
    registry, lake_dir, _, warehouse, first = built
    assert not first.reused
    before = identity(first.path)
    again = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry)
    assert again.reused and identity(again.path) == before
    assert again.row_counts == first.row_counts
    assert again.unmapped_rows == first.unmapped_rows and again.visits_merged == first.visits_merged
    assert [(r.cdm_table, r.staged_rows, r.cdm_rows, r.unaccounted) for r in again.reconciliation] == [
        (r.cdm_table, r.staged_rows, r.cdm_rows, r.unaccounted) for r in first.reconciliation
    ]
    rebuilt = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry, reuse_unchanged=False)
    assert not rebuilt.reused and identity(rebuilt.path) != before


def test_a_new_batch_staged_and_linked_builds_again(built):
    registry, lake_dir, landing, warehouse, first = built
    before = identity(first.path)
    land(landing, "site", "b2", {"encounters.csv": ENCOUNTERS_HEADER + encounter("e9", "p1")})
    ingest_batch(lake_dir, landing, registry.get("site"), "b2")
    build_staging(lake_dir, registry)
    link(lake_dir)
    again = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry)
    assert not again.reused and identity(again.path) != before


def test_any_input_table_rewritten_builds_again(built):
    """Even with the same rows: a Delta version is all the fingerprint reads of a table."""
    registry, lake_dir, _, warehouse, _ = built
    crosswalk = lake.table_path(lake_dir, "linkage", "person_crosswalk")
    write_deltalake(str(crosswalk), lake.read_table(crosswalk), mode="overwrite")
    assert not build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry).reused


def test_a_table_written_anew_at_the_same_version_builds_again(built):
    """An erasure rewrites a table from version 0 (governance/history.py): same version, other rows."""
    registry, lake_dir, _, warehouse, _ = built
    crosswalk = lake.table_path(lake_dir, "linkage", "person_crosswalk")
    version = lake.open_table(crosswalk).version()
    history.rewrite(None, crosswalk, "person_id = (SELECT min(person_id) FROM er_t)")
    for _ in range(version):  # back to the version the last build read
        write_deltalake(str(crosswalk), lake.read_table(crosswalk), mode="overwrite")
    assert lake.open_table(crosswalk).version() == version
    assert not build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry).reused


def test_the_fingerprint_covers_the_vocabulary_and_the_code(built, monkeypatch):
    registry, lake_dir, _, warehouse, _ = built
    base = reuse.input_fingerprint(lake_dir, "v1", registry)
    assert reuse.input_fingerprint(lake_dir, "v2", registry) != base
    monkeypatch.setattr(reuse, "code_digest", lambda: "another code")
    assert reuse.input_fingerprint(lake_dir, "v1", registry) != base
    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results.build_fingerprint").fetchone()[0] == 1
