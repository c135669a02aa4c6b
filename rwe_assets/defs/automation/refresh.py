"""Refreshes triggered by asset events: a new materialization of a raw asset or of the vocabulary
store requests one `build` run, whatever produced it.

`refresh_on_new_data` is a multi-asset sensor over every raw asset of the registry and `vocab/store`.
It reads the materializations recorded since its cursor, so a raw partition materialized by the
landing sensor's run, from the UI's asset graph, by `rwe ingest` or reported from outside a run
(runless) all count the same. Per tick:

1. events of a run still in progress are not consumed yet (the cursor stays): a raw run records its
   entities one by one, and a build requested between two of them would be followed by another;
2. events recorded by a `build` run are the build's own outputs (the build materializes
   `vocab/store` itself): consumed, never a reason to build again;
3. events older than a build run created after them are already covered: that build reads everything
   ingested before it started (the CLI runs its own build right after its raw runs);
4. whatever is left, however many events, gives one build request; its run key names the newest event,
   so the daemon launches it once.

A failed raw run that still stored rows (one corrupt file among good ones) materialized its entities:
its readable rows are built and published, and the failure stays red in the UI.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import dagster as dg

from rwe_assets.defs.automation.recovery import host_tags
from rwe_assets.defs.automation.retry import code_tags
from rwe_assets.defs.jobs import build_job

SENSOR_NAME = "refresh_on_new_data"
EVENTS_PER_KEY = 200  # per asset and tick; more are read on the next tick
VOCABULARY_STORE = dg.AssetKey(["vocab", "store"])  # defs/cdm/assets.py (a test holds them equal)
_NOT_A_BUILD = (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING)


def monitored_keys(registry) -> list[dg.AssetKey]:
    raw = [dg.AssetKey(["raw", source.name, entity]) for source in registry for entity in source.entity_names]
    return [*raw, VOCABULARY_STORE]


def build_refresh_sensor(registry) -> dg.SensorDefinition:
    with warnings.catch_warnings():
        # Dagster points multi-asset sensors to declarative automation, and allows them where a
        # specific job must run: here the `build` job, and automation conditions cost 45-75 s a tick.
        warnings.filterwarnings("ignore", message=".*MultiAssetSensorDefinition.*", category=Warning)
        return _refresh_sensor(monitored_keys(registry))


def _refresh_sensor(keys: list[dg.AssetKey]) -> dg.SensorDefinition:
    @dg.multi_asset_sensor(
        name=SENSOR_NAME,
        monitored_assets=keys,
        job=build_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Requests one build (staging, linkage, CDM, checks, publish) when raw assets or the vocabulary "
            "store have new materializations, from any run or none; never for the build's own outputs."
        ),
    )
    def refresh_on_new_data(context: dg.MultiAssetSensorEvaluationContext):
        return evaluate_refresh(context)

    return refresh_on_new_data


def evaluate_refresh(context: dg.MultiAssetSensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    # One query for the latest record of every key, then the full list only where something is new:
    # ~100 raw keys, almost all quiet on a given tick.
    changed = [key for key, record in context.latest_materialization_records_by_key().items() if record]
    events = [
        (key, record)
        for key in changed
        for record in context.materialization_records_for_key(key, limit=EVENTS_PER_KEY)
    ]
    if not events:
        return dg.SkipReason("no new materializations of raw assets or the vocabulary")
    runs = _runs_by_id(context.instance, {record.run_id for _, record in events})
    running = sorted(run_id for run_id, run in runs.items() if not run.is_finished)
    if running:
        return dg.SkipReason(f"waiting for run(s) {', '.join(running)} to finish")
    for key, record in events:
        context.advance_cursor({key: record})
    new = [record for _, record in events if _job_name(runs, record.run_id) != build_job.name]
    if not new:
        return dg.SkipReason(f"{len(events)} materialization(s) by the build itself: nothing new")
    newest = max(new, key=lambda record: record.storage_id)
    covering = _build_created_after(context.instance, newest.timestamp)
    if covering is not None:
        return dg.SkipReason(f"{len(new)} new materialization(s), already covered by build run {covering}")
    return dg.RunRequest(
        run_key=f"assets:{newest.storage_id}",
        tags={
            "rwe/trigger": "asset_event",
            "rwe/after_run": newest.run_id or "runless",
            "rwe/new_materializations": str(len(new)),
            **host_tags(),
            **code_tags(),
        },
    )


def _runs_by_id(instance: dg.DagsterInstance, run_ids: set[str]) -> dict[str, dg.DagsterRun]:
    """The runs that recorded the events; a runless event (reported from outside a run) has none."""
    ids = [run_id for run_id in run_ids if run_id]
    if not ids:
        return {}
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=ids))
    return {record.dagster_run.run_id: record.dagster_run for record in records}


def _job_name(runs: dict[str, dg.DagsterRun], run_id: str) -> str | None:
    run = runs.get(run_id)
    return run.job_name if run is not None else None


def _build_created_after(instance: dg.DagsterInstance, timestamp: float) -> str | None:
    """The id of a build run created after `timestamp` and not cancelled, if there is one."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=build_job.name, created_after=datetime.fromtimestamp(timestamp, tz=UTC)
        ),
        limit=5,
    )
    for record in records:
        if record.dagster_run.status not in _NOT_A_BUILD:
            return record.dagster_run.run_id
    return None
