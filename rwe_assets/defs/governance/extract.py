"""The de-identified extract asset: warehouse/rwe_deid.duckdb from the published CDM (Safe Harbor)."""

import dagster as dg

from rwe_assets.lib.governance.extract import export
from rwe_assets.resources import RweConfig

PUBLISHED_CDM = dg.AssetKey(["publish", "rwe_duckdb"])


@dg.asset(
    key=["governance", "rwe_deid_duckdb"],
    group_name="governance",
    kinds={"duckdb"},
    deps=[PUBLISHED_CDM],
    code_version="deid-1",
)
def rwe_deid_duckdb(context: dg.AssetExecutionContext, rwe: RweConfig) -> dg.MaterializeResult:
    """data/warehouse/rwe_deid.duckdb: the published CDM de-identified by HIPAA Safe Harbor (dates
    shifted per person, ZIP3, ages 90+ grouped, free text and identifiers removed, small cells
    suppressed); see docs/governance.md. Reads rwe.duckdb read-only, replaces its own file atomically,
    and records the export in the audit trail."""
    result = export(rwe.settings())
    dropped = {
        c.table: c.rows_source - c.rows_extract for c in result.counts if c.rows_source != c.rows_extract
    }
    context.log.info(f"de-identified extract: {result.persons} persons, {len(dropped)} tables lost rows")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "persons": result.persons,
            "persons_90_or_older": result.persons_90_plus,
            "rows": sum(c.rows_extract for c in result.counts),
            "rows_dropped_by_table": dg.MetadataValue.json(dropped),
            "results_rows": result.results_rows,
            "seconds": round(result.seconds, 2),
        }
    )


extract_assets = [rwe_deid_duckdb]
