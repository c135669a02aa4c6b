"""The characterization assets materialize against a build.duckdb and report what they wrote."""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import duckdb

from rwe_assets.defs.analytics import characterization_assets
from rwe_assets.defs.analytics.characterization import ACHILLES_RESULTS, DQD_JSON
from rwe_assets.lib.quality.dqd import write_results
from rwe_assets.resources import RweConfig
from rwe_assets_tests.lib.analytics.fixture_cdm import build_fixture_cdm
from rwe_assets_tests.lib.analytics.test_dqd_export import result


def test_assets_write_results_and_json(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_MIN_CELL_COUNT", "2")
    warehouse = tmp_path / "data" / "warehouse"
    warehouse.mkdir(parents=True)
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        build_fixture_cdm(con)
        write_results(con, [result("a", "PASS", 0, 100), dataclasses.replace(result("b", "FAIL", 1, 100))])
    outcome = dg.materialize(
        characterization_assets, resources={"rwe": RweConfig(data_dir=str(tmp_path / "data"))}
    )
    assert outcome.success
    achilles = outcome.asset_materializations_for_node("results__achilles_results")[0].metadata
    assert achilles["min_cell_count"].value == 2
    assert achilles["achilles_results_rows"].value > 0 and achilles["suppressed_results_rows"].value > 0
    assert "seconds" in achilles
    exported = outcome.asset_materializations_for_node("results__dq_results_json")[0].metadata
    assert exported["checks"].value == 2 and exported["suppressed_checks"].value == 1
    document = json.loads((warehouse / "dq_results.json").read_text())
    assert document["Overview"]["countTotal"] == 2
    with duckdb.connect(str(warehouse / "build.duckdb"), read_only=True) as con:
        persons = con.execute(
            "SELECT count_value FROM results.achilles_results WHERE analysis_id = 1"
        ).fetchone()
    assert persons == (3,)
    assert {a.key for a in characterization_assets} == {ACHILLES_RESULTS, DQD_JSON}
