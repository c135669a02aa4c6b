"""Publish asset: the built CDM database becomes the file analysts open."""

import dagster as dg

from rwe_assets.defs.cdm.assets import cdm_key
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.publish import publish
from rwe_assets.lib.vocabulary import VOCABULARY_TABLES
from rwe_assets.resources import RweConfig


@dg.asset(
    key=["publish", "rwe_duckdb"],
    group_name="publish",
    kinds={"duckdb"},
    deps=[cdm_key(t.name) for t in cdm_spec().tables if t.name not in VOCABULARY_TABLES],
    pool="duckdb_build",
    code_version="publish-1",
)
def rwe_duckdb(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """data/warehouse/rwe.duckdb, the database analysts open read-only: an atomic copy of the last
    complete build."""
    target = publish(rwe.settings().warehouse_dir)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(target)), "size_bytes": target.stat().st_size}
    )


publish_assets = [rwe_duckdb]
