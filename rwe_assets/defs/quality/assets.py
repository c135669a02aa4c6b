"""Data-quality assets: the DQD-style check suite over the built CDM, before it is published.

The assets open build.duckdb through dagster-duckdb's DuckDBResource (`build_database`): its
get_connection() retries while another process holds the file (DuckDB allows one writer) instead of
failing at once, and passes the settings' memory limit and threads as connection config. The path
comes from the settings at run time (RWE_DATA_DIR), so the resource is made per run from RweConfig.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from rwe_assets.defs.cdm.assets import CDM_TABLES, cdm_key
from rwe_assets.lib.quality.dqd import run_checks, summarize
from rwe_assets.lib.quality.gate import STRUCTURAL_CHECKS, blocking_failures
from rwe_assets.lib.quality.incremental import recorded_mode
from rwe_assets.lib.warehouse_files import BUILD
from rwe_assets.resources import RweConfig

DQ_RESULTS = dg.AssetKey(["results", "dq_check_results"])
STRUCTURAL_CHECK = "dqd_structural_checks_pass"


def build_database(rwe: RweConfig) -> DuckDBResource:
    """data/warehouse/build.duckdb as a DuckDBResource, configured from the settings."""
    settings = rwe.settings()
    return DuckDBResource(
        database=str(settings.warehouse_dir / BUILD),
        connection_config={"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads},
    )


@dg.asset(
    key=DQ_RESULTS,
    group_name="results",
    kinds={"duckdb"},
    deps=[cdm_key(table) for table in CDM_TABLES],
    pool="duckdb_build",
    code_version="dq-2",
    check_specs=[
        dg.AssetCheckSpec(
            STRUCTURAL_CHECK,
            asset=DQ_RESULTS,
            # Not a Dagster-blocking check: that would also skip the per-table checks that show which
            # table failed (defs/quality/table_checks.py). publish/rwe_duckdb refuses the build itself
            # (lib/publish.py re-reads these results), so a failure still never reaches analysts.
            description=f"No structural DQD check failed ({', '.join(STRUCTURAL_CHECKS)}): publishing refuses "
            "the build otherwise.",
        )
    ],
)
def dq_check_results(context: dg.AssetExecutionContext, rwe: RweConfig):
    """Every applicable OHDSI DQD v5.4 check (27 types, generated from the catalogue) run on
    build.duckdb; results in results.dq_check_results, published with the CDM. After an incremental
    CDM build the per-person checks count the rebuilt persons only (lib/quality/incremental.py)."""
    with build_database(rwe).get_connection() as con:
        results = run_checks(con, "cdm", "results", run_id=context.run_id)
        failures = blocking_failures(con, context.run_id)
        counted = recorded_mode(con, context.run_id)
    summary = summarize(results)
    yield dg.MaterializeResult(
        metadata={
            "checks": summary["total"],
            "passed": summary["passed"],
            "failed": summary["failed"],
            "not_applicable": summary["not_applicable"],
            # over applicable checks that can fail; those that cannot are counted apart
            "pass_rate": round(summary["pass_rate"] or 0.0, 4),
            "cannot_fail": summary["cannot_fail"],
            "cannot_fail_failed": summary["cannot_fail_checks"]["failed"],
            "dqd_pass_rate": round(summary["dqd_pass_rate"] or 0.0, 4),
            # after an incremental CDM build, per-person checks count the rebuilt persons only
            "counted": f"{counted.mode}: {counted.reason}",
            "checks_merged_per_person": counted.merged_checks,
            "persons_counted": counted.persons if counted.persons is not None else "all",
            "failed_checks": dg.MetadataValue.md(
                "\n".join(
                    f"- {r.check_id}: {r.num_violated_rows}/{r.num_denominator_rows} (threshold {r.threshold_pct}%)"
                    for r in results
                    if r.failed
                )
                or "none"
            ),
        }
    )
    yield dg.AssetCheckResult(
        check_name=STRUCTURAL_CHECK,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed_structural_checks": dg.MetadataValue.json(dict(failures))},
    )


quality_assets = [dq_check_results]
