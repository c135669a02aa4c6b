"""Publish asset: the built CDM database becomes the file analysts open."""

import dagster as dg

from rwe_assets.defs.analytics.characterization import ACHILLES_RESULTS
from rwe_assets.defs.analytics.cohorts import INCIDENCE_SURVIVAL
from rwe_assets.defs.quality import DQ_RESULTS
from rwe_assets.lib.publish import publish_file
from rwe_assets.resources import RweConfig


@dg.asset(
    key=["publish", "rwe_duckdb"],
    group_name="publish",
    kinds={"duckdb"},
    deps=[DQ_RESULTS, ACHILLES_RESULTS, INCIDENCE_SURVIVAL],
    pool="duckdb_build",
    code_version="publish-2",
)
def rwe_duckdb(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """data/warehouse/rwe.duckdb, the database analysts open read-only: an atomic copy of the last
    complete build, made only when its latest data-quality run has no failed structural check;
    compacted into a fresh file when much of the build file is the space of deleted rows."""
    settings = rwe.settings()
    published = publish_file(settings.warehouse_dir, settings=settings)
    context.log.info(f"published {published.size_bytes:,} bytes; {published.reason}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published.path)),
            "size_bytes": published.size_bytes,
            "build_size_bytes": published.build_bytes,
            "compacted": published.compacted,
            "compaction_reason": published.reason,
            "reclaimable_share": round(published.reclaimable, 4),
        }
    )


publish_assets = [rwe_duckdb]
