"""Characterization assets: Achilles results and the DQD viewer's JSON, after the data-quality run.

Both read build.duckdb through the quality assets' DuckDBResource (``build_database``), in the
``duckdb_build`` pool like every writer of that file, after results/dq_check_results, so they land in
the build before it is published. The minimum cell count comes from the settings
(lib/analytics/disclosure.py).
"""

import time

import dagster as dg

from rwe_assets.defs.quality import DQ_RESULTS
from rwe_assets.defs.quality.assets import build_database
from rwe_assets.lib.analytics.achilles import run_achilles
from rwe_assets.lib.analytics.disclosure import min_cell_count
from rwe_assets.lib.analytics.dqd_export import write_dqd_json
from rwe_assets.lib.warehouse_files import DQD_JSON_FILE
from rwe_assets.resources import RweConfig

ACHILLES_RESULTS = dg.AssetKey(["results", "achilles_results"])
DQD_JSON = dg.AssetKey(["results", "dq_results_json"])


@dg.asset(
    key=ACHILLES_RESULTS,
    group_name="analytics",
    kinds={"duckdb"},
    deps=[DQ_RESULTS],
    pool="duckdb_build",
    code_version="achilles-1",
)
def achilles_results(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """Achilles characterization of the CDM (standard analysis ids and strata) in
    results.achilles_results, achilles_results_dist and achilles_analysis; cells below the minimum
    cell count removed and counted in results.achilles_suppression."""
    settings = rwe.settings()
    with build_database(rwe).get_connection() as con:
        run = run_achilles(con, "cdm", "results", min_cell_count=min_cell_count(settings=settings))
    slowest = sorted(run.analysis_seconds.items(), key=lambda item: -item[1])[:5]
    return dg.MaterializeResult(
        metadata={
            "analyses": len(run.computed),
            "skipped_analyses": dg.MetadataValue.json(list(run.skipped)),
            "achilles_results_rows": run.results_rows,
            "achilles_results_dist_rows": run.dist_rows,
            "suppressed_results_rows": run.suppressed_results_rows,
            "suppressed_dist_rows": run.suppressed_dist_rows,
            "min_cell_count": run.min_cell_count,
            "seconds": round(run.seconds, 2),
            "slowest_analyses": dg.MetadataValue.md(
                "\n".join(f"- {analysis_id}: {seconds:.2f}s" for analysis_id, seconds in slowest) or "none"
            ),
        }
    )


@dg.asset(
    key=DQD_JSON,
    group_name="analytics",
    kinds={"duckdb", "json"},
    deps=[DQ_RESULTS],
    pool="duckdb_build",
    code_version="dqd-json-1",
)
def dq_results_json(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """The latest DQD run as the JSON file OHDSI's DataQualityDashboard viewer loads, written beside
    the database (warehouse/dq_results.json); small-cell counts blanked."""
    settings = rwe.settings()
    started = time.perf_counter()
    with build_database(rwe).get_connection() as con:
        export = write_dqd_json(
            con, settings.warehouse_dir / DQD_JSON_FILE, min_cell_count=min_cell_count(settings=settings)
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(export.path)),
            "run_id": export.run_id,
            "checks": export.checks,
            "suppressed_checks": export.suppressed_checks,
            "min_cell_count": export.min_cell_count,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


characterization_assets = [achilles_results, dq_results_json]
