"""One writer per lake: the lock file's waiting, stale-lock rule and re-entry; and two concurrent
ingests (two processes, two Dagster homes) that leave the lake exactly as one would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pyarrow.compute as pc
import pytest

from rwe_assets.lib import lake, lake_lock
from rwe_assets.lib.lake_lock import LakeLockedError
from rwe_assets.lib.lake_lock import lake_lock as hold
from rwe_assets.settings import REPO_DIR

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rwe_assets.lib.lake_lock import lake_lock
    with lake_lock(Path(sys.argv[1]), "test holder"):
        print("held", flush=True)
        time.sleep(120)
    """
)


def start_holder(data_dir) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)], cwd=REPO_DIR, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_waits_then_gives_up_naming_the_holder(tmp_path):
    holder = start_holder(tmp_path)
    try:
        told = []
        started = time.monotonic()
        with (
            pytest.raises(LakeLockedError) as refused,
            hold(tmp_path, "second", timeout=1.0, on_wait=told.append),
        ):
            pass
        assert time.monotonic() - started >= 1.0
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message and "test holder" in message
        assert len(told) == 1 and "waiting up to 1 s" in told[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_on_this_host_is_taken_over_at_once(tmp_path):
    holder = start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lake_lock.read_owner(tmp_path).pid == holder.pid  # the file still names the dead owner
    with hold(tmp_path, "next", timeout=0) as owner:
        assert owner.pid == os.getpid() and f"pid {holder.pid}" in owner.took_over_from
    assert lake_lock.read_owner(tmp_path) is None  # released: the record is cleared


def test_another_hosts_lock_counts_until_its_heartbeat_expires(tmp_path, monkeypatch):
    record = {
        "pid": 4242,
        "host": "other-host.example",
        "process_started": None,
        "purpose": "rwe ingest",
        "started_at": time.time(),
        "heartbeat_at": time.time(),
    }
    lake_lock.lock_path(tmp_path).write_text(json.dumps(record))
    with (
        pytest.raises(LakeLockedError, match=r"pid 4242 on host other-host\.example"),
        hold(tmp_path, "x", timeout=0),
    ):
        pass
    record["heartbeat_at"] = time.time() - lake_lock.STALE_AFTER_SECONDS - 1
    lake_lock.lock_path(tmp_path).write_text(json.dumps(record))
    with hold(tmp_path, "x", timeout=0) as owner:
        assert "other-host.example" in owner.took_over_from


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    with hold(tmp_path, "outer") as outer, hold(tmp_path, "inner") as inner:
        assert inner == outer and lake_lock.holds_lock(tmp_path)
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from rwe_assets.lib.lake_lock import lake_lock\n"
                "try:\n    with lake_lock(Path(sys.argv[1]), 'probe', timeout=0): print('got it')\n"
                "except Exception as e: print(type(e).__name__)",
                str(tmp_path),
            ],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
        )
        assert probe.stdout.strip() == "LakeLockedError"
    assert not lake_lock.holds_lock(tmp_path)


def test_a_heartbeat_keeps_the_record_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(lake_lock, "HEARTBEAT_SECONDS", 0.05)
    with hold(tmp_path, "beating") as owner:
        time.sleep(0.3)
        assert lake_lock.read_owner(tmp_path).heartbeat_at > owner.heartbeat_at


INGEST = textwrap.dedent(
    """
    import pathlib, sys, time
    import dagster as dg
    from rwe_assets.definitions import defs
    from rwe_assets.defs.jobs import run_landed_batches
    from rwe_assets.lib import raw_ingest
    from rwe_assets.lib.sources import load_registry
    from rwe_assets.settings import Settings

    real = raw_ingest._append_manifest
    def slow_manifest(*args, **kwargs):  # a slow writer: rows written, manifest not yet
        time.sleep(1.5)
        return real(*args, **kwargs)
    raw_ingest._append_manifest = slow_manifest
    settings = Settings.from_env()
    print("ready", flush=True)
    while not pathlib.Path(sys.argv[1]).exists():  # both start ingesting at the same moment
        time.sleep(0.02)
    with dg.DagsterInstance.get() as instance:
        outcomes = run_landed_batches(defs, instance, settings.landing_dir, load_registry())
    sys.exit(0 if all(r.success for _, r in outcomes) else 1)
    """
)


def lake_state(lake_dir) -> dict:
    """Rows per raw table and per file, and the manifest's (file, sha256, status) rows."""
    from rwe_assets.lib.raw_ingest import read_manifest

    state = {}
    for path in sorted([*(lake_dir / "raw").glob("*/*"), lake_dir / "raw" / "_quarantine"]):
        if path.is_dir() and lake.exists(path):
            table = lake.read_table(path, columns=["_file_sha256"])
            counts = pc.value_counts(table.column(0)).to_pylist()
            state[path.relative_to(lake_dir).as_posix()] = sorted(counts, key=str)
    manifest = read_manifest(lake_dir).to_pylist()
    state["manifest"] = sorted((m["relative_path"], m["file_sha256"], m["status"]) for m in manifest)
    return state


def start_ingest(data_dir, dagster_home, go) -> subprocess.Popen:
    dagster_home.mkdir(parents=True)
    shutil.copyfile(REPO_DIR / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "RWE_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)}
    command = [sys.executable, "-c", INGEST, str(go)]
    process = subprocess.Popen(
        command, cwd=REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "ready", process.stderr.read()[-2000:]
    return process


@pytest.mark.slow  # subprocesses that import the whole code location (minutes on 2 busy cores)
def test_two_concurrent_ingests_with_two_dagster_homes_leave_the_lake_as_one_would(tmp_path):
    from rwe_assets.cli import SAMPLE_DIR
    from rwe_assets.lib.raw_ingest import ingest_batch
    from rwe_assets.lib.sources import load_registry

    single, double = tmp_path / "single", tmp_path / "double"
    for data_dir in (single, double):  # two files of the bundled sample: small, and enough to double
        for batch, name in (("b1", "Patient.000.ndjson.gz"), ("b2", "Condition.000.ndjson.gz")):
            folder = data_dir / "landing" / "ehr_sample_fhir" / batch
            folder.mkdir(parents=True)
            shutil.copyfile(SAMPLE_DIR / "fhir13" / name, folder / name)
    registry = load_registry()
    for batch in ("b1", "b2"):  # the reference: one writer, the library alone
        ingest_batch(single / "lake", single / "landing", registry.get("ehr_sample_fhir"), batch)
    go = tmp_path / "go"
    first, second = (
        start_ingest(double, tmp_path / "home_a", go),
        start_ingest(double, tmp_path / "home_b", go),
    )
    go.touch()
    assert first.wait(timeout=600) == 0 and second.wait(timeout=600) == 0, second.stderr.read()[-2000:]

    expected = lake_state(single / "lake")
    assert sum(len(v) for k, v in expected.items() if k != "manifest") > 0
    assert lake_state(double / "lake") == expected  # no row and no manifest row twice


@dg.asset
def _lock_probe() -> dg.MaterializeResult:
    from rwe_assets.settings import Settings

    return dg.MaterializeResult(metadata={"held": lake_lock.holds_lock(Settings.from_env().data_dir)})


def _probe_job() -> dg.JobDefinition:
    from rwe_assets.defs.jobs import lake_writer_executor

    return dg.Definitions(
        assets=[_lock_probe], jobs=[dg.define_asset_job("probe", executor_def=lake_writer_executor)]
    ).resolve_job_def("probe")


def test_runs_the_daemon_launches_hold_the_lock_for_their_whole_length(tmp_path, monkeypatch):
    """The jobs' executor (what a launched run executes with, unlike execute_in_process) holds it."""
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(_probe_job), instance=instance)
        assert result.success
        [event] = result.get_asset_materialization_events()
        assert event.materialization.metadata["held"].value is True
    assert not lake_lock.holds_lock(tmp_path) and lake_lock.read_owner(tmp_path) is None
