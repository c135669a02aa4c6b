"""Automation and freshness: a landed batch flows to the published database without a click.

Two sensors, both on by default in `dagster dev`:

1. `landing_sensor` (defs/raw/sensors.py) starts one `raw_ingest` run per new batch;
2. `refresh_after_ingest` starts one `build` run (staging -> linkage -> CDM -> checks -> publish)
   after each successful `raw_ingest` run. Build runs share the `duckdb_build` pool, so they queue
   rather than overlap; each rebuilds from everything ingested so far, so a batch that lands while a
   build runs is picked up by the next one.

A raw run that fails (a corrupt file) starts no build: the failure stays visible in the UI, and the
next successful batch's build takes the readable rows of the failed batch too. A run whose process
died is marked failed by the next tick (recovery.py) and run again; a failed build is retried when
the code changed since (retry.py). Both jobs take one run at a time and the lake lock (defs/jobs.py).

Why a run-status sensor and not declarative automation conditions: evaluating conditions over this
graph (about 130 asset keys, the CDM multi-asset alone has 40) took 45-75 s per tick on the 2-core
machine, so the daemon would keep a core busy; the sensor looks at one run record per tick.

Freshness: the published database and the results analysts read are expected to be refreshed within
a day (warn after 12 hours): sites deliver at least daily, so an older file means the pipeline has
stopped. The UI shows each of those assets as fresh, warning or failing.
"""

from datetime import timedelta

import dagster as dg

from rwe_assets.defs.automation.recovery import host_tags
from rwe_assets.defs.automation.retry import code_tags
from rwe_assets.defs.jobs import build_job, raw_ingest_job

DAILY = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=24), warn_window=timedelta(hours=12))
ANALYST_FACING_LAYERS = ("publish", "results")


@dg.run_status_sensor(
    name="refresh_after_ingest",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[raw_ingest_job],
    request_job=build_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful raw ingest, rebuild staging, linkage, CDM, checks and publish.",
)
def refresh_after_ingest(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    run = context.dagster_run
    return dg.RunRequest(
        run_key=f"after:{run.run_id}",
        tags={
            "rwe/trigger": "raw_ingest",
            "rwe/after_run": run.run_id,
            **_batch_tags(run.tags),
            **host_tags(),
            **code_tags(),
        },
    )


def _batch_tags(tags: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if key in ("rwe/source", "rwe/batch")}


def with_freshness(assets: list) -> list:
    """The same assets, with the freshness policy on the published file and the results tables."""
    return list(dg.map_asset_specs(_fresh_spec, assets))


def _fresh_spec(spec: dg.AssetSpec) -> dg.AssetSpec:
    return dg.apply_freshness_policy(spec, DAILY) if spec.key.path[0] in ANALYST_FACING_LAYERS else spec
