"""The code location: one Definitions object for the whole graph."""

import dagster as dg

from rwe_assets.defs.automation import refresh_after_ingest, with_freshness
from rwe_assets.defs.cdm import cdm_assets
from rwe_assets.defs.jobs import build_job, raw_ingest_job
from rwe_assets.defs.linkage import linkage_assets
from rwe_assets.defs.publish import publish_assets
from rwe_assets.defs.quality import quality_assets, table_checks
from rwe_assets.defs.raw import build_landing_sensor, build_raw_assets
from rwe_assets.defs.staging import build_staging_assets
from rwe_assets.resources import RweConfig

defs = dg.Definitions(
    assets=with_freshness(
        [
            *build_raw_assets(),
            build_staging_assets(),
            *linkage_assets,
            *cdm_assets,
            *quality_assets,
            *publish_assets,
        ]
    ),
    asset_checks=table_checks,
    sensors=[build_landing_sensor(), refresh_after_ingest],
    jobs=[raw_ingest_job, build_job],
    resources={"rwe": RweConfig()},
    # One process per run: a new process per step costs seconds of imports on 2 cores (STACK_NOTES).
    executor=dg.in_process_executor,
)
