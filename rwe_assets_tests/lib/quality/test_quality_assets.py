"""The quality assets on a small build.duckdb: they open it through dagster-duckdb's DuckDBResource,
report the pass rate over checks that can fail, and the per-table checks read the latest run by time."""

from __future__ import annotations

import dagster as dg
import duckdb

from rwe_assets.defs.cdm.assets import CDM_TABLES
from rwe_assets.defs.quality.assets import build_database, dq_check_results
from rwe_assets.defs.quality.table_checks import dqd_table_checks
from rwe_assets.resources import RweConfig
from rwe_assets_tests.lib.quality.test_dqd import clean_cdm


def write_build(data_dir) -> None:
    (data_dir / "warehouse").mkdir(parents=True)
    con = clean_cdm()
    con.execute(f"ATTACH '{data_dir / 'warehouse' / 'build.duckdb'}' AS target")
    con.execute("COPY FROM DATABASE memory TO target")
    con.close()


def test_quality_assets_use_the_duckdb_resource_and_count_checks_that_can_fail(tmp_path):
    write_build(tmp_path)
    rwe = RweConfig(data_dir=str(tmp_path))
    resource = build_database(rwe)
    assert resource.database == str(tmp_path / "warehouse" / "build.duckdb")
    with resource.get_connection() as con:  # dagster-duckdb's connection to the build file
        assert con.execute("SELECT count(*) FROM cdm.person").fetchone() == (2,)

    result = dg.materialize([dq_check_results], resources={"rwe": rwe})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("results__dq_check_results")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["cannot_fail"] == 1164 and meta["cannot_fail_failed"] == 0
    assert meta["checks"] == 2535
    with duckdb.connect(str(tmp_path / "warehouse" / "build.duckdb"), read_only=True) as con:
        stored = con.execute(
            "SELECT count(*) FILTER (WHERE cannot_fail_reason IS NOT NULL) FROM results.dq_check_results"
        ).fetchone()
    assert stored == (1164,)

    # the per-table checks, run as Dagster runs them, read that (latest) run
    checks = dg.materialize(
        [dqd_table_checks], resources={"rwe": rwe}, selection=dg.AssetSelection.all_asset_checks()
    )
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in checks.get_asset_check_evaluations()
    }
    assert evaluations[("cdm/person", "dqd_structural")] is True
    assert len(evaluations) == 2 * len(CDM_TABLES)
