"""Recovery without hands: runs whose process is gone are marked failed and give back their pool slots.

A SIGKILLed run (or a power cut) leaves its run record STARTED and keeps the concurrency-pool slots of
its steps, so the next run waits for a slot forever. `rwe ingest` executes in-process, with no daemon,
so Dagster's run monitoring never looks at it (and the default run launcher of `dagster dev` cannot
check a run worker's health either). Every entry point therefore calls `reap_dead_runs` when it
starts: the CLI (defs/jobs.py), and the landing sensor on every tick.

How a run's process is known: the CLI tags its runs with `rwe/host`, `rwe/pid` and `rwe/pid_started`
(the kernel's start time of that pid, so a reused pid is not taken for the run). Runs launched by the
sensors are tagged with `rwe/host` only (the daemon launches their workers on this host); their pid
is the one Dagster itself records in the run's first engine event ("Started process for run (pid:
N)" / "Executing steps in process (pid: N)"). A run of another host, or with no pid yet (a QUEUED run
waiting for the daemon), is never touched.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg

from rwe_assets.lib.lake_lock import pid_alive, process_start_time

HOST_TAG, PID_TAG, PID_STARTED_TAG = "rwe/host", "rwe/pid", "rwe/pid_started"
LOST_TAG = "rwe/lost_process"  # set on a reaped run: its failure is no verdict on its input (retry.py)
# NOT_STARTED and QUEUED only count when the run names its pid (a CLI run killed before its first step).
_LIVE_STATUSES = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


_RUNNING = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def host_tags() -> dict[str, str]:
    """Tags of a run launched for this host (by a sensor)."""
    return {HOST_TAG: socket.gethostname()}


def process_tags() -> dict[str, str]:
    """Tags of a run executed by this very process (in-process, by the CLI)."""
    pid = os.getpid()
    tags = {**host_tags(), PID_TAG: str(pid)}
    started = process_start_time(pid)
    if started is not None:
        tags[PID_STARTED_TAG] = started
    return tags


@dataclass(frozen=True)
class ReapedRun:
    run_id: str
    job_name: str
    pid: int
    status: str


def reap_dead_runs(instance: dg.DagsterInstance) -> list[ReapedRun]:
    """Mark every run of this host whose process is gone as failed and free its concurrency slots."""
    host = socket.gethostname()
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=_LIVE_STATUSES, tags={HOST_TAG: host}))
    reaped = []
    for record in records:
        run = record.dagster_run
        pid = _run_pid(instance, run)
        if pid is None or pid_alive(pid, run.tags.get(PID_STARTED_TAG)):
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The process of this run (pid {pid} on {host}) is gone (killed, or the machine "
                f"restarted); marked failed by rwe when the next run started. Its steps' pool slots are freed."
            ),
        )
        instance.add_run_tags(run.run_id, {LOST_TAG: "true"})
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(ReapedRun(run.run_id, run.job_name, pid, run.status.value))
    return reaped


def _run_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    tagged = run.tags.get(PID_TAG)
    if tagged is not None and tagged.isdigit():
        return int(tagged)
    if run.status not in _RUNNING:
        return None  # queued for the daemon: no process of its own yet
    return _engine_event_pid(instance, run.run_id)


def _engine_event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event is not None else None
        metadata = getattr(data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value)
    return None
