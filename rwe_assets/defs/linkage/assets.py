"""Linkage assets: keyed tokens and the person crosswalk (the master patient index contract)."""

import dagster as dg

from rwe_assets.defs.staging.assets import staging_key
from rwe_assets.lib import lake
from rwe_assets.lib.linkage.crosswalk import DEMO_KEY, build_crosswalk
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.resources import RweConfig

TOKENS = dg.AssetKey(["linkage", "tokens"])
CROSSWALK = dg.AssetKey(["linkage", "person_crosswalk"])


@dg.multi_asset(
    name="linkage",
    specs=[
        dg.AssetSpec(
            TOKENS,
            group_name="linkage",
            kinds={"delta"},
            deps=[staging_key("person_pii")],
            description="Keyed HMAC-SHA256 tokens of each source person's normalized PII; no PII itself.",
            code_version="linkage-interim-1",
        ),
        dg.AssetSpec(
            CROSSWALK,
            group_name="linkage",
            kinds={"delta"},
            deps=[TOKENS],
            description=(
                "(source_system, source_person_id) -> person_id, stable across reruns and batches. Interim "
                "rule: records with the same exact token are one person; everything else is a singleton."
            ),
            code_version="linkage-interim-1",
        ),
    ],
    pool="lake_linkage",
)
def linkage(context: dg.AssetExecutionContext, rwe: RweConfig):
    settings = rwe.settings()
    if settings.linkage_key is None:
        context.log.warning("RWE_LINKAGE_KEY is not set: linking with the public DEMO key (demo data only)")
    con = staging_connection(settings.duckdb_memory_limit, settings.duckdb_threads)
    pii = lake.open_table(lake.table_path(settings.lake_dir, "staging", "person_pii"))
    if pii is None:
        raise dg.Failure("staging/person_pii does not exist yet: materialize the staging assets first")
    con.register("person_pii", pii.to_pyarrow_dataset())
    crosswalk = build_crosswalk(con, settings.lake_dir, settings.linkage_key or DEMO_KEY)
    metadata = {"dagster/row_count": crosswalk.num_rows, "demo_key": settings.linkage_key is None}
    yield dg.MaterializeResult(asset_key=TOKENS, metadata=metadata)
    persons = len(set(crosswalk.column("person_id").to_pylist()))
    yield dg.MaterializeResult(asset_key=CROSSWALK, metadata={**metadata, "persons": persons})


linkage_assets = [linkage]
