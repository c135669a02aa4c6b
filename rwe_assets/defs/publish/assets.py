"""Publish asset: the built CDM database becomes the file analysts open."""

import dagster as dg

from rwe_assets.defs.analytics.characterization import ACHILLES_RESULTS
from rwe_assets.defs.analytics.cohorts import INCIDENCE_SURVIVAL
from rwe_assets.defs.quality import DQ_RESULTS
from rwe_assets.lib.publish import publish
from rwe_assets.resources import RweConfig


@dg.asset(
    key=["publish", "rwe_duckdb"],
    group_name="publish",
    kinds={"duckdb"},
    deps=[DQ_RESULTS, ACHILLES_RESULTS, INCIDENCE_SURVIVAL],
    pool="duckdb_build",
    code_version="publish-1",
)
def rwe_duckdb(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """data/warehouse/rwe.duckdb, the database analysts open read-only: an atomic copy of the last
    complete build, made only when its latest data-quality run has no failed structural check."""
    settings = rwe.settings()
    target = publish(settings.warehouse_dir, settings=settings)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(target)), "size_bytes": target.stat().st_size}
    )


publish_assets = [rwe_duckdb]
