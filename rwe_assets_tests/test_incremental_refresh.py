"""Incremental refresh (issue 26): a base batch built, then an update batch landed and built, gives the
same published CDM as both batches landed at once and built from scratch, by the CDM comparison
tool. This guards the meaning of corrections across batches (snapshot re-sends, FHIR versions and
entered-in-error, claim adjustments and voids), whatever the build does internally; staging, which
stages the update incrementally, also leaves its tables row for row as the full build does.

The stepwise lake is the one test_cdm_incremental builds on (conftest's `incremental_lake`: the base
built, the update staged incrementally and linked), built once per run: this test finishes its CDM
build and publishes it, and builds from scratch only what it compares it with: their CDMs, not
checked or published (the comparison reads the cdm schema, which neither changes)."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.staging.incremental import staged_digests
from rwe_assets_tests import incremental_lake as shared
from rwe_assets_tests.crash_harness import build_check_publish, stage_and_link

pytestmark = pytest.mark.slow


def land(generated, data_dir, rename: dict[str, str] | None = None) -> None:
    shutil.copytree(generated / "landing", data_dir / "landing", dirs_exist_ok=True)
    for old, new in (rename or {}).items():
        for folder in (data_dir / "landing").glob(f"*/{old}"):
            folder.rename(folder.with_name(new))


def build_from_scratch(data_dir):
    """The landed batches ingested, staged, linked and built into a CDM; its build file."""
    stage_and_link(data_dir)
    cdm_build.build_cdm(data_dir / "lake", shared.VOCAB, data_dir / "warehouse")
    return data_dir / "warehouse" / "build.duckdb"


def count(database, sql: str) -> int:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_an_update_built_after_its_base_equals_both_built_at_once(incremental_lake, tmp_path):
    base, update = incremental_lake.parent / "base", incremental_lake.parent / "update"
    stepwise, at_once = tmp_path / "stepwise", tmp_path / "at_once"
    shutil.copytree(incremental_lake, stepwise)
    warehouse = stepwise / "warehouse"
    before = warehouse / "rwe_base.duckdb"  # the base batch's CDM
    shutil.copy(warehouse / "build.duckdb", before)
    # the rest of crash_harness.run after the update's staging and linkage (pinned, as it was staged)
    with shared.pinned_code():
        assert build_check_publish(stepwise).mode == "incremental"
    land(base, at_once)
    land(update, at_once)
    built_at_once = build_from_scratch(at_once)

    published = warehouse / "rwe.duckdb"
    comparison = compare_cdms(published, built_at_once)
    assert comparison.same, format_comparison(comparison)
    # staging took the incremental path for the update, and left every staging table row for row as
    # the full build of both batches did (ingest times differ between the two lakes)
    modes = lake.read_table(lake.table_path(stepwise / "lake", "staging", "_staged_files"), ["staging_mode"])
    assert set(modes["staging_mode"].to_pylist()) == {"incremental"}
    ingest_time = ("_ingested_at",)
    assert staged_digests(stepwise / "lake", ingest_time) == staged_digests(at_once / "lake", ingest_time)
    # the update did change the CDM: new persons, and every kind of change, are in it
    assert not compare_cdms(before, published).same
    changes = pl.read_csv(update / "truth" / "update_changes.csv")
    assert set(changes["CHANGE"]) >= {"new_event", "correction", "retraction", "adjustment", "void"}
    persons = "SELECT count(*) FROM cdm.person"
    assert count(published, persons) > count(before, persons)

    # the comparison sees a build that got the corrections' order wrong: the update landed at once
    # under a name that sorts, and so is ingested, before the base, whose versions then win
    wrong = tmp_path / "wrong_order"
    land(base, wrong)
    land(update, wrong, rename={"update_0001": "batch_0000"})
    differing = {t.table for t in compare_cdms(published, build_from_scratch(wrong)).differing}
    assert {"measurement", "condition_occurrence"} <= differing
