"""Jobs that write the lake, and the CLI's way of running them.

Raw ingest is one job per source, `raw_ingest_<source>`, partitioned by that source's batches
(defs/partitions.py): a job takes one partitions definition, and each source has its own so that a raw
asset shows only its own batches. One partitioned job per source (rather than one unpartitioned job)
keeps a run bound to one batch: the run's `dagster/partition` tag, the UI's partition view and the
backfill dialog all work as they did with the shared definition. `build` is unpartitioned.
The landing sensor (defs/raw/sensors.py) imports the jobs and the run tags from here, never the
reverse: this module imports nothing from defs/raw (a test walks the imports).

One writer per lake, three layers deep:
- every raw job and the build carry the tag `rwe/lake_writer`, limited to one run at a time by the run queue
  (`dagster.yaml`, concurrency.runs.tag_concurrency_limits): runs the daemon launches (sensors, the
  UI's launchpad) queue instead of interleaving step by step;
- their executor (in-process, as before) holds the lake lock (lib/lake_lock.py) for the whole run, so
  a run launched by `dagster dev` and an `rwe ingest` of another DAGSTER_HOME never overlap;
- `rwe ingest` bypasses the run queue (execute_in_process), so it holds the lake lock itself for the
  whole ingest and build (`lake_writer_session`), and first reaps runs whose process is gone; its
  runs carry `cli_run_tags()` (host and pid) so the next start can tell they died with it.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg

from rwe_assets.defs.automation.recovery import process_tags, reap_dead_runs
from rwe_assets.defs.automation.retry import code_tags
from rwe_assets.defs.partitions import batches_for, register_batch
from rwe_assets.lib.lake_lock import lake_lock
from rwe_assets.lib.landing import LandedBatch, list_batches

LAKE_WRITER_TAG = "rwe/lake_writer"
_WRITER_TAGS = {LAKE_WRITER_TAG: "lake"}


class _LakeLockedExecutor(dg.Executor):
    """Dagster's in-process executor, with the lake lock held around the whole run."""

    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        from rwe_assets.lib.governance.permissions import private_umask

        data_dir = _run_data_dir(plan_context.dagster_run.run_config)
        with (
            lake_lock(
                data_dir,
                f"{plan_context.job_name} run {plan_context.run_id[:8]}",
                on_wait=plan_context.log.info,
            ),
            private_umask(),
        ):  # what a run writes holds PII or derives from it: owner-only from creation
            yield from self._inner.execute(plan_context, execution_plan)


def _run_data_dir(run_config) -> Path:
    """The data directory the run's `rwe` resource writes: its run config's data_dir, else the env's."""
    from rwe_assets.settings import Settings

    resource = ((run_config or {}).get("resources") or {}).get("rwe") or {}
    configured = (resource.get("config") or {}).get("data_dir")
    return Settings.from_env(data_dir=Path(configured).resolve() if configured else None).data_dir


@dg.executor(name="in_process_lake_writer", config_schema=dg.in_process_executor.config_schema)
def lake_writer_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In-process execution (a process per step costs seconds of imports) under the lake lock."""
    return _LakeLockedExecutor(dg.in_process_executor.executor_creation_fn(init_context))


RAW_JOB_PREFIX = "raw_ingest_"


def raw_job_name(source: str) -> str:
    return f"{RAW_JOB_PREFIX}{source}"


@cache  # one object per source: Definitions and the landing sensor must hold the same job
def raw_ingest_job(source: str) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        raw_job_name(source),
        selection=dg.AssetSelection.key_prefixes(["raw", source]),
        partitions_def=batches_for(source),
        executor_def=lake_writer_executor,
        tags=_WRITER_TAGS,
        description=f"Ingest one landed batch of {source} (partition '{source}__<batch>') into the raw layer.",
    )


def raw_ingest_jobs(registry) -> list[dg.UnresolvedAssetJobDefinition]:
    return [raw_ingest_job(source.name) for source in registry]


def batch_tags(batch: LandedBatch) -> dict[str, str]:
    """Tags of the raw run of one landed batch (the sensor's and `rwe ingest`'s alike): the fingerprint
    tells a batch whose files changed from one already ingested."""
    return {"rwe/source": batch.source, "rwe/batch": batch.batch_id, "rwe/fingerprint": batch.fingerprint}


build_job = dg.define_asset_job(
    "build",
    selection=dg.AssetSelection.all() - dg.AssetSelection.key_prefixes("raw"),
    executor_def=lake_writer_executor,
    tags=_WRITER_TAGS,
    description="Rebuild everything downstream of the raw layer: staging, linkage, CDM, results.",
)


def run_landed_batches(defs: dg.Definitions, instance: dg.DagsterInstance, landing_dir, registry) -> list:
    """Register every batch found in the landing zone and run the raw ingest for each, in-process.

    What the landing sensor does on a schedule, done now: used by `rwe ingest` and `rwe demo`.
    Batches already ingested cost a manifest lookup and add nothing. Runs of this host whose process
    is gone are marked failed first (their pool slots would block these runs). Returns (partition
    key, run).
    """
    reap_dead_runs(instance)
    outcomes = []
    for source in registry:
        landed, _ = list_batches(landing_dir, source.name)
        job = defs.resolve_job_def(raw_job_name(source.name)) if landed else None
        for batch in landed:
            register_batch(instance, source.name, batch.partition_key)
            result = job.execute_in_process(
                instance=instance,
                partition_key=batch.partition_key,
                asset_selection=sorted(job.asset_layer.selected_asset_keys),  # raw/<source>/<entity>, all
                raise_on_error=False,
                tags={**batch_tags(batch), **cli_run_tags()},
            )
            outcomes.append((batch.partition_key, result))
    return outcomes


def cli_run_tags(build: bool = False) -> dict[str, str]:
    """Tags of a run `rwe ingest` executes in-process: the lake-writer tag, this process's host and pid
    (so a later start can tell the run died with it), and for a build the code fingerprint."""
    return {**_WRITER_TAGS, **process_tags(), **(code_tags() if build else {})}


@contextmanager
def lake_writer_session(instance: dg.DagsterInstance, settings, *, on_wait=print):
    """What `rwe ingest` wraps all its runs in: runs of this host whose process is gone are marked
    failed (their pool slots freed), then the lake lock is held until the block ends. Raises
    lake_lock.LakeLockedError when another writer holds the lake longer than
    lake_lock.DEFAULT_TIMEOUT_SECONDS."""
    for run in reap_dead_runs(instance):
        on_wait(f"run {run.run_id} ({run.job_name}, pid {run.pid}) had died: marked failed, its slots freed")
    with lake_lock(settings.data_dir, "rwe ingest", on_wait=on_wait):
        yield
