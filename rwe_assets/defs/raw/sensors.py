"""The landing sensor: registers each new batch as a partition and requests one run for it."""

import json
import time

import dagster as dg

from rwe_assets.defs.jobs import raw_ingest_job
from rwe_assets.defs.partitions import batches
from rwe_assets.defs.raw.assets import raw_key
from rwe_assets.lib.landing import LandedBatch, list_batches
from rwe_assets.lib.sources import load_registry
from rwe_assets.resources import RweConfig


def batch_tags(batch: LandedBatch) -> dict[str, str]:
    return {"rwe/source": batch.source, "rwe/batch": batch.batch_id, "rwe/fingerprint": batch.fingerprint}


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


def build_landing_sensor(registry=None) -> dg.SensorDefinition:
    registry = registry or load_registry()

    @dg.sensor(
        name="landing_sensor",
        job=raw_ingest_job,  # runs of this job start the downstream refresh (defs/automation)
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Watches data/landing/<source>/ for new batch folders (or files). Each new batch becomes a "
            "partition '<source>__<batch>' and gets exactly one run of its source's raw assets; a batch "
            "whose files change later gets one more run, and the ingest manifest skips files already seen."
        ),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, rwe: RweConfig) -> dg.SensorResult:
        settings = rwe.settings()
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        known = set(context.instance.get_dynamic_partitions(batches.name))
        now, new_keys, requests, waiting = time.time(), [], [], []
        for source in registry:
            landed, rejected = list_batches(settings.landing_dir, source.name)
            for name in rejected:
                context.log.warning(
                    f"landing/{source.name}/{name}: not a valid batch name (letters, digits, '.', '-', '_'; no '__')"
                )
            for batch in landed:
                if seen.get(batch.partition_key) == batch.fingerprint:
                    continue
                if already_ingested(context.instance, batch):  # e.g. by `rwe ingest`
                    seen[batch.partition_key] = batch.fingerprint
                    continue
                if now - batch.newest_mtime < settings.landing_settle_seconds:
                    waiting.append(batch.partition_key)
                    continue
                if batch.partition_key not in known:
                    new_keys.append(batch.partition_key)
                requests.append(
                    dg.RunRequest(
                        run_key=f"{batch.partition_key}:{batch.fingerprint}",
                        partition_key=batch.partition_key,
                        asset_selection=[raw_key(source.name, e) for e in source.entity_names],
                        tags=batch_tags(batch),
                    )
                )
                seen[batch.partition_key] = batch.fingerprint
        skip = None
        if not requests:
            skip = f"still settling: {', '.join(waiting)}" if waiting else "no new batches"
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[batches.build_add_request(new_keys)] if new_keys else [],
            cursor=json.dumps(seen, sort_keys=True),
            skip_reason=skip,
        )

    return landing_sensor
