"""Crash safety: the pipeline SIGKILLed at several points and run again publishes the same tables as
an uninterrupted run, and the published file stays readable, and unchanged, throughout. Through
Dagster too: a killed run is marked failed and its pool slots freed by the next start, with no
manual step (defs/automation/recovery.py)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys

import dagster as dg
import duckdb
import pytest
from dagster._core.events import EngineEventData  # what Dagster's run worker records its pid with

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.defs.automation.recovery import HOST_TAG, LOST_TAG, PID_STARTED_TAG, PID_TAG, reap_dead_runs
from rwe_assets.defs.automation.retry import build_retry_request, code_tags
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.crash_harness import POINTS, run_process


def run_pipeline(data_dir, point=None) -> int:
    return run_process(data_dir, point).returncode


def land(data_dir, source, batch):
    shutil.copytree(SAMPLE_DIR / batch, data_dir / "landing" / source / batch)


def fingerprint(path) -> dict[str, tuple[int, int]]:
    """(rows, order-independent content hash) of every CDM table of a published database."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'cdm' ORDER BY table_name"
            ).fetchall()
        ]
        return {
            t: con.execute(f"SELECT count(*), coalesce(sum(hash(x)), 0) FROM cdm.{t} AS x").fetchone()
            for t in tables
            # cdm_source: its release date is the day of the build; cohort tables: written by the
            # analytics assets after the build, which the library path (run_pipeline) does not run
            if t not in ("cdm_source", "cohort", "cohort_definition")
        }


def test_killed_runs_recover_to_the_same_published_tables(tmp_path, sample_published):
    uninterrupted, crashed = tmp_path / "uninterrupted", tmp_path / "crashed"
    # the same history: one batch published (one run, copied: nothing in a data directory names its
    # path), then a second
    shutil.copytree(sample_published, uninterrupted)
    shutil.copytree(sample_published, crashed)
    published = crashed / "warehouse" / "rwe.duckdb"
    first_version = fingerprint(published)

    for data_dir in (uninterrupted, crashed):
        land(data_dir, "ehr_sample_fhir", "fhir13")
    assert run_pipeline(uninterrupted) == 0
    for point in POINTS:
        assert run_pipeline(crashed, point) == -signal.SIGKILL, point
        assert fingerprint(published) == first_version, point  # readable, and still the old version
    assert run_pipeline(crashed) == 0

    expected = fingerprint(uninterrupted / "warehouse" / "rwe.duckdb")
    assert expected["note"][0] == 1215  # the second batch is in
    assert fingerprint(published) == expected


# --------------------------------------------------------------------------- recovery without hands


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped) on this host."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def add_run(instance, status, tags, pool=None) -> str:
    run = dg.DagsterRun(job_name="raw_ingest", status=status, tags=tags)
    instance.run_storage.add_run(run)
    if pool is not None:
        instance.event_log_storage.set_concurrency_slots(pool, 1)
        assert instance.event_log_storage.claim_concurrency_slot(pool, run.run_id, "step").is_claimed
    return run.run_id


def test_runs_whose_process_is_gone_are_failed_and_give_back_their_pool_slots():
    here = {HOST_TAG: socket.gethostname()}
    with dg.instance_for_test() as instance:
        dead = add_run(
            instance, dg.DagsterRunStatus.STARTED, {**here, PID_TAG: str(dead_pid())}, "lake_raw_x"
        )
        live = add_run(instance, dg.DagsterRunStatus.STARTED, {**here, PID_TAG: str(os.getpid())})
        queued = add_run(instance, dg.DagsterRunStatus.NOT_STARTED, here)  # no process yet: the daemon's
        launched = add_run(instance, dg.DagsterRunStatus.STARTED, here)  # by the daemon: pid in an event
        instance.report_engine_event(
            "Started process for run",
            instance.get_run_by_id(launched),
            EngineEventData.in_process(dead_pid()),
        )
        elsewhere = add_run(
            instance, dg.DagsterRunStatus.STARTED, {HOST_TAG: "other-host", PID_TAG: str(dead_pid())}
        )
        reused = add_run(  # the pid lives, but it is another process than the one that ran it
            instance, dg.DagsterRunStatus.STARTED, {**here, PID_TAG: str(os.getpid()), PID_STARTED_TAG: "1"}
        )

        reaped = reap_dead_runs(instance)

        assert sorted(r.run_id for r in reaped) == sorted([dead, reused, launched])
        status = {run_id: instance.get_run_by_id(run_id).status for run_id in (dead, live, queued, elsewhere)}
        assert status == {
            dead: dg.DagsterRunStatus.FAILURE,
            live: dg.DagsterRunStatus.STARTED,
            queued: dg.DagsterRunStatus.NOT_STARTED,
            elsewhere: dg.DagsterRunStatus.STARTED,
        }
        assert instance.get_run_by_id(dead).tags[LOST_TAG] == "true"
        assert instance.event_log_storage.get_concurrency_info("lake_raw_x").active_slot_count == 0
        assert reap_dead_runs(instance) == []  # once


def test_a_lost_build_is_retried_and_a_failed_one_once_the_code_changed():
    with dg.instance_for_test() as instance:
        assert build_retry_request(instance) is None
        failed = dg.DagsterRun(job_name="build", status=dg.DagsterRunStatus.FAILURE, tags=code_tags())
        instance.run_storage.add_run(failed)
        assert build_retry_request(instance) is None  # same code, no new input: nothing to retry
        instance.add_run_tags(failed.run_id, {"rwe/code": "an-older-version"})
        request = build_retry_request(instance)
        assert request.job_name == "build" and failed.run_id in request.run_key
        lost = dg.DagsterRun(job_name="build", status=dg.DagsterRunStatus.FAILURE, tags={LOST_TAG: "true"})
        instance.run_storage.add_run(lost)
        assert build_retry_request(instance).run_key == f"retry:{lost.run_id}"
        for _ in range(2):  # lost three times in a row: a person has to look
            again = dg.DagsterRun(
                job_name="build", status=dg.DagsterRunStatus.FAILURE, tags={LOST_TAG: "true"}
            )
            instance.run_storage.add_run(again)
        assert build_retry_request(instance) is None


def run_ingest_command(data_dir, point=None) -> subprocess.CompletedProcess:
    """`rwe ingest` (rwe_assets.cli.main) in its own process, Dagster home inside
    the data directory; with POINT it SIGKILLs itself there."""
    home = data_dir / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_DIR / "dagster.yaml", home / "dagster.yaml")
    command = [
        sys.executable,
        "-m",
        "rwe_assets_tests.crash_harness",
        str(data_dir),
        *([point] if point else []),
        "--dagster",
    ]
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # A run that waits for a pool slot a dead run holds would wait forever: the timeout turns that into a failure.
    return subprocess.run(command, cwd=REPO_DIR, env=env, capture_output=True, timeout=900)


@pytest.mark.slow  # subprocesses that import the whole code location (minutes on 2 busy cores)
def test_killed_dagster_runs_block_nothing_and_the_next_ingest_matches_an_uninterrupted_one(
    tmp_path, monkeypatch, sample_published
):
    crashed = tmp_path / "crashed"
    land(crashed, "ehr_sample", "synthea27")
    # the uninterrupted run is sample_published's, by the library path: the same tables as the Dagster path

    for point in POINTS:  # each kill run first has to get past the dead run(s) the previous one left
        outcome = run_ingest_command(crashed, point)
        assert outcome.returncode == -signal.SIGKILL, (point, outcome.stderr[-3000:])
    outcome = run_ingest_command(crashed)
    assert outcome.returncode == 0, outcome.stderr[-3000:]

    monkeypatch.setenv("DAGSTER_HOME", str(crashed / ".dagster_home"))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records()
        lost = [r for r in runs if r.dagster_run.tags.get(LOST_TAG)]
        assert len(lost) == len(POINTS)  # each killed run marked failed, with no manual step
        assert all(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in lost)
        assert not [r for r in runs if r.dagster_run.status == dg.DagsterRunStatus.STARTED]
    expected = fingerprint(sample_published / "warehouse" / "rwe.duckdb")
    assert fingerprint(crashed / "warehouse" / "rwe.duckdb") == expected
