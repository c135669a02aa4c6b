"""End to end: the whole graph materialized on the bundled sample, as `rwe demo` runs it."""

from __future__ import annotations

import shutil

import dagster as dg

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.definitions import defs
from rwe_assets.defs.jobs import run_landed_batches
from rwe_assets.lib import lake
from rwe_assets.lib.sources import load_registry


def test_whole_graph_on_the_bundled_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    shutil.copytree(SAMPLE_DIR / "synthea27", tmp_path / "landing" / "ehr_sample" / "synthea27")
    with dg.instance_for_test() as instance:
        outcomes = run_landed_batches(defs, instance, tmp_path / "landing", load_registry())
        assert [(key, result.success) for key, result in outcomes] == [("ehr_sample__synthea27", True)]
        build = defs.resolve_job_def("build").execute_in_process(instance=instance)
        assert build.success
        checks = build.get_asset_check_evaluations()
        assert checks and all(check.passed for check in checks)

    def rows(*parts):
        return lake.open_table(lake.table_path(tmp_path / "lake", *parts)).to_pyarrow_dataset().count_rows()

    assert rows("staging", "person_source") == 27
    assert rows("staging", "visit") == rows("raw", "ehr_sample", "encounters") == 604
