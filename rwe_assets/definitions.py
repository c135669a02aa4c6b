"""The code location: one Definitions object for the whole graph.

The graph follows the source registry: the bundled rwe_assets/sources.yaml plus the user's own
(<data>/sources.yaml or RWE_SOURCES_FILE, lib/sources.py), so a source added there gets its raw
group, its sensor coverage and its staging without touching the package. build_definitions(registry)
builds the same graph for any registry (tests).
"""

import logging

import dagster as dg

from rwe_assets.defs.analytics import characterization_assets
from rwe_assets.defs.analytics.cohorts import cohort_assets
from rwe_assets.defs.automation import with_freshness
from rwe_assets.defs.automation.refresh import build_refresh_sensor
from rwe_assets.defs.cdm import cdm_assets
from rwe_assets.defs.governance import extract_assets, governance_assets, governance_checks
from rwe_assets.defs.jobs import build_job, raw_ingest_jobs
from rwe_assets.defs.linkage import linkage_assets
from rwe_assets.defs.publish import publish_assets
from rwe_assets.defs.quality import quality_assets, table_checks
from rwe_assets.defs.raw import build_landing_sensor, build_raw_assets
from rwe_assets.defs.staging import build_staging_assets
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.resources import RweConfig

# Libraries that log to the terminal on their own (Splink prints a warning per comparison level it
# cannot train): their records go to the running step's Dagster log instead, at INFO, so they are kept
# with the run (UI, `rwe ingest --verbose`) and do not flood the console, where Dagster shows WARNING up.
ROUTED_LIBRARY_LOGGERS = ("splink",)


class _ToDagsterLog(logging.Handler):
    """Re-log a library's records through Dagster's logger, which the running step captures into its
    event log; outside a step they reach the 'dagster' Python logger, never the bare terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        dg.get_dagster_logger(f"lib.{record.name}").info(
            "%s: %s", logging.getLevelName(record.levelno), record.getMessage().strip()
        )


def route_library_logs(names: tuple[str, ...] = ROUTED_LIBRARY_LOGGERS) -> None:
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(handler, _ToDagsterLog) for handler in logger.handlers):
            logger.addHandler(_ToDagsterLog())
        logger.propagate = False  # the handler above is where they go; Python's last-resort print is not


def build_definitions(registry: SourceRegistry | None = None) -> dg.Definitions:
    registry = registry or load_registry()
    return dg.Definitions(
        assets=with_freshness(
            [
                *build_raw_assets(registry),
                build_staging_assets(registry),
                *linkage_assets,
                *cdm_assets,
                *quality_assets,
                *characterization_assets,
                *cohort_assets,
                *publish_assets,
                *governance_assets,
                *extract_assets,
            ]
        ),
        asset_checks=[*table_checks, *governance_checks],
        sensors=[build_landing_sensor(registry), build_refresh_sensor(registry)],
        jobs=[*raw_ingest_jobs(registry), build_job],
        resources={"rwe": RweConfig()},
        # One process per run: a new process per step costs seconds of imports on 2 cores (STACK_NOTES).
        executor=dg.in_process_executor,
    )


route_library_logs()
defs = build_definitions()
