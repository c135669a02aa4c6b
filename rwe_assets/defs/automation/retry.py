"""Retries that need no person: a run lost with its process, and a build whose cause may be fixed.

- A run reaped by recovery.py (its process died) is tagged `rwe/lost_process`; the landing sensor runs
  its batch again (a raw run) or requests a new build, once per lost run (the run key names it). After
  three builds lost in a row (an out-of-memory kill comes back every time) it stops and waits for a
  person.
- A build that failed for any other reason is retried when the code changed since (a fix: the code
  location reloaded with other source files; `rwe/code` tags every build with a fingerprint of the
  package's files). New input needs no rule here: every new materialization of a raw asset or of the
  vocabulary already requests a build (refresh_on_new_data, defs/automation).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import dagster as dg

from rwe_assets.defs.automation.recovery import LOST_TAG

CODE_TAG = "rwe/code"
MAX_LOST_RETRIES = 3  # builds lost in a row before the retries stop
_PACKAGE = Path(__file__).resolve().parents[2]
_CODE_SUFFIXES = (".py", ".sql", ".yaml", ".yml", ".json", ".csv")


@cache
def code_fingerprint() -> str:
    """A digest of the package's source files as this process loaded them (computed once)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def code_tags() -> dict[str, str]:
    return {CODE_TAG: code_fingerprint()}


def latest_run(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str] | None = None):
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name, tags=tags or {}), limit=1)
    return records[0].dagster_run if records else None


def build_retry_request(instance: dg.DagsterInstance, job_name: str = "build") -> dg.RunRequest | None:
    """A new build when the latest build failed and was lost with its process or the code changed."""
    recent = [
        r.dagster_run
        for r in instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=MAX_LOST_RETRIES)
    ]
    run = recent[0] if recent else None
    if run is None or run.status != dg.DagsterRunStatus.FAILURE:
        return None
    if len(recent) == MAX_LOST_RETRIES and all(r.tags.get(LOST_TAG) for r in recent):
        return None  # lost every time (killed for memory?): a person has to look; the UI shows why
    if run.tags.get(LOST_TAG):
        reason, key = "its process was lost", f"retry:{run.run_id}"
    elif run.tags.get(CODE_TAG) not in (None, code_fingerprint()):
        reason, key = "the code changed since it failed", f"retry:{run.run_id}:{code_fingerprint()}"
    else:
        return None
    tags = {"rwe/trigger": "retry", "rwe/retry_of": run.run_id, "rwe/retry_reason": reason, **code_tags()}
    return dg.RunRequest(job_name=job_name, run_key=key, tags=tags)


def lost_raw_runs(instance: dg.DagsterInstance, limit: int = 200) -> dict[tuple[str, str], str]:
    """(partition key, batch fingerprint) -> id of a raw run of it that was lost with its process. One
    query per tick; the retry's run key names the lost run, so Dagster launches each retry once. Raw
    runs are told by their batch tags, not their job name: each source has its own raw job."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], tags={LOST_TAG: "true"}),
        limit=limit,
    )
    lost = {}
    for record in reversed(records):  # oldest first: the newest lost run of a batch version wins
        tags = record.dagster_run.tags
        key = (tags.get("dagster/partition"), tags.get("rwe/fingerprint"))
        if None not in key:
            lost[key] = record.dagster_run.run_id
    return lost
