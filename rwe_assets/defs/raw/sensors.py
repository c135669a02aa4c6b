"""The landing sensor: registers each new batch as a partition and requests one run for it.

On every tick it also does what needs no person: runs of this host whose process is gone are marked
failed and their pool slots freed (defs/automation/recovery.py), and a build that failed is retried
once its cause may be gone (defs/automation/retry.py). Batch folders that cannot be batches (bad
names, symlinks) are reported on every tick in the log and the skip reason."""

import json
import time

import dagster as dg

from rwe_assets.defs.automation.recovery import host_tags, reap_dead_runs
from rwe_assets.defs.automation.retry import build_retry_request, lost_raw_runs
from rwe_assets.defs.jobs import batch_tags, build_job, raw_ingest_jobs, raw_job_name
from rwe_assets.defs.partitions import batches_for
from rwe_assets.defs.raw.assets import raw_key
from rwe_assets.lib.landing import LandedBatch, invalid_batches, list_batches
from rwe_assets.lib.linkage_key import check_before_ingest
from rwe_assets.lib.sources import load_registry, unknown_landing_folders
from rwe_assets.resources import RweConfig


def already_ingested(instance: dg.DagsterInstance, batch: LandedBatch) -> bool:
    """Whether a successful run already ingested this batch with exactly these files."""
    runs = instance.get_run_records(
        filters=dg.RunsFilter(
            tags={"dagster/partition": batch.partition_key, "rwe/fingerprint": batch.fingerprint},
            statuses=[dg.DagsterRunStatus.SUCCESS],
        ),
        limit=1,
    )
    return bool(runs)


def _raw_run_request(source, batch: LandedBatch, run_key: str) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=raw_job_name(source.name),
        run_key=run_key,
        partition_key=batch.partition_key,
        asset_selection=[raw_key(source.name, e) for e in source.entity_names],
        tags={**batch_tags(batch), **host_tags()},
    )


def build_landing_sensor(registry=None) -> dg.SensorDefinition:
    registry = registry or load_registry()

    @dg.sensor(
        name="landing_sensor",
        jobs=[*raw_ingest_jobs(registry), build_job],  # builds: retries only (new data: defs/automation)
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Watches data/landing/<source>/ for new batch folders (or files). Each new batch becomes a "
            "partition '<source>__<batch>' of its source's definition (batches_<source>) and gets exactly "
            "one run of its source's raw job (raw_ingest_<source>); a batch "
            "whose files change later gets one more run, and the ingest manifest skips files already seen."
        ),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, rwe: RweConfig) -> dg.SensorResult:
        settings = rwe.settings()
        for run in reap_dead_runs(context.instance):
            context.log.warning(
                f"run {run.run_id} ({run.job_name}) lost its process (pid {run.pid}): marked failed"
            )
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        invalid = invalid_batches(settings.landing_dir, registry)
        for entry in invalid:
            context.log.warning(entry.describe())
        for name in unknown_landing_folders(settings.landing_dir, registry):
            context.log.warning(
                f"landing/{name}: no source of that name in the registry; not read "
                f"(declare it in {settings.user_sources_file})"
            )
        now, new_keys, requests, waiting, to_ingest = time.time(), {}, [], [], []
        lost = lost_raw_runs(context.instance)
        for source in registry:
            landed, _ = list_batches(settings.landing_dir, source.name)
            known = (
                set(context.instance.get_dynamic_partitions(batches_for(source.name).name))
                if landed
                else set()
            )
            for batch in landed:
                run_key = f"{batch.partition_key}:{batch.fingerprint}"
                if seen.get(batch.partition_key) == batch.fingerprint:
                    lost_run = lost.get((batch.partition_key, batch.fingerprint))
                    if lost_run is None:
                        continue
                    run_key += f":retry:{lost_run}"  # its process died: run it again, once per lost run
                elif already_ingested(context.instance, batch):  # e.g. by `rwe ingest`
                    seen[batch.partition_key] = batch.fingerprint
                    continue
                if now - batch.newest_mtime < settings.landing_settle_seconds:
                    waiting.append(batch.partition_key)
                    continue
                if batch.partition_key not in known:
                    new_keys.setdefault(source.name, []).append(batch.partition_key)
                requests.append(_raw_run_request(source, batch, run_key))
                to_ingest.append(batch)
                seen[batch.partition_key] = batch.fingerprint
        problem = check_before_ingest(settings, to_ingest) if to_ingest else None
        if problem:  # refused before anything is ingested; the cursor stays, so `rwe init` then retries
            context.log.error(problem)
            return dg.SensorResult(skip_reason=problem, cursor=context.cursor)
        retry = build_retry_request(context.instance)
        if retry is not None:
            requests.append(retry)
        skip = None
        if not requests:
            skip = f"still settling: {', '.join(waiting)}" if waiting else "no new batches"
            if invalid:
                listed = ", ".join(f"{e.source}/{e.name} ({e.reason_code})" for e in invalid)
                skip += f"; not read: {listed}"
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[
                batches_for(s).build_add_request(keys) for s, keys in new_keys.items()
            ],
            cursor=json.dumps(seen, sort_keys=True),
            skip_reason=skip,
        )

    return landing_sensor
