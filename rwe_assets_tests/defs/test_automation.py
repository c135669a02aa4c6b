"""A batch dropped into the landing zone reaches the published database with no manual step: the
landing sensor and the refresh sensor are ticked here as the daemon would tick them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import dagster as dg
import duckdb

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.definitions import defs
from rwe_assets.defs.automation import refresh_after_ingest
from rwe_assets.defs.automation.recovery import HOST_TAG, PID_TAG
from rwe_assets.resources import RweConfig
from rwe_assets_tests.conftest import red_error_checks


def tick_landing_sensor(instance, cursor):
    """One landing-sensor tick; its runs executed in-process. Returns (new cursor, runs)."""
    sensor = defs.resolve_sensor_def("landing_sensor")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"rwe": RweConfig()}, definitions=defs
    )
    result = sensor(context)  # the sensor's own result, as the daemon receives it
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = defs.resolve_job_def("raw_ingest")
    runs = [
        job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            asset_selection=list(request.asset_selection),
            tags=request.tags,
        )
        for request in result.run_requests
    ]
    return result.cursor, runs


def tick_refresh_sensor(instance, raw_run):
    """The run-status sensor's reaction to a finished raw run; the build it requests, executed."""
    context = dg.build_run_status_sensor_context(
        sensor_name="refresh_after_ingest",
        dagster_event=raw_run.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=raw_run.dagster_run,
    )
    request = refresh_after_ingest(context)
    assert isinstance(request, dg.RunRequest)
    return defs.resolve_job_def("build").execute_in_process(instance=instance, tags=request.tags)


def published_persons(path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM cdm.person").fetchone()[0]


def test_landed_batches_flow_to_the_published_database_without_a_click(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RWE_LANDING_SETTLE_SECONDS", "0")
    published = tmp_path / "warehouse" / "rwe.duckdb"
    with dg.instance_for_test() as instance:
        shutil.copytree(SAMPLE_DIR / "synthea27", tmp_path / "landing" / "ehr_sample" / "synthea27")
        sensor_cursor, raw_runs = tick_landing_sensor(instance, None)
        assert [(run.success, run.dagster_run.job_name) for run in raw_runs] == [(True, "raw_ingest")]
        build = tick_refresh_sensor(instance, raw_runs[0])
        assert build.success
        assert build.get_asset_check_evaluations() and red_error_checks(build) == []
        first_version = published.stat().st_mtime_ns
        assert published_persons(published) == 27

        # Nothing new landed: the sensor starts nothing.
        sensor_cursor, raw_runs = tick_landing_sensor(instance, sensor_cursor)
        assert raw_runs == []

        shutil.copytree(SAMPLE_DIR / "fhir13", tmp_path / "landing" / "ehr_sample_fhir" / "fhir13")
        sensor_cursor, raw_runs = tick_landing_sensor(instance, sensor_cursor)
        assert [run.success for run in raw_runs] == [True]
        build = tick_refresh_sensor(instance, raw_runs[0])
        assert build.success
        assert build.get_asset_check_evaluations() and red_error_checks(build) == []
        assert published.stat().st_mtime_ns > first_version
        assert published_persons(published) == 27 + 13


def test_sensors_are_on_by_default_and_analyst_facing_assets_have_freshness_policies():
    for name in ("landing_sensor", "refresh_after_ingest"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    for key, spec in ((s.key.to_user_string(), s) for s in defs.resolve_all_asset_specs()):
        assert (spec.freshness_policy is not None) == key.startswith(("publish/", "results/")), key


def sensor_tick(instance, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"rwe": RweConfig()}, definitions=defs
    )
    return defs.resolve_sensor_def("landing_sensor")(context)


def test_the_sensor_reports_what_it_does_not_read_and_reruns_a_run_that_died(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RWE_LANDING_SETTLE_SECONDS", "0")
    sources = tmp_path / "landing" / "ehr_sample_fhir"
    (sources / "bad name").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (sources / "linked").symlink_to(tmp_path / "elsewhere")
    with dg.instance_for_test() as instance:
        result = sensor_tick(instance)
        assert result.run_requests == []
        assert "ehr_sample_fhir/bad name (INVALID_BATCH_NAME)" in result.skip_reason.skip_message
        assert "ehr_sample_fhir/linked (SYMLINK_REFUSED)" in result.skip_reason.skip_message

        (sources / "b1").mkdir()
        shutil.copyfile(
            SAMPLE_DIR / "fhir13" / "Patient.000.ndjson.gz", sources / "b1" / "Patient.000.ndjson.gz"
        )
        result = sensor_tick(instance, result.cursor)
        [request] = result.run_requests
        assert request.tags[HOST_TAG] == socket.gethostname()
        # The daemon launched it and its worker was SIGKILLed: STARTED for ever, its pid gone.
        worker = subprocess.Popen([sys.executable, "-c", "pass"])
        worker.wait()
        run = dg.DagsterRun(
            job_name="raw_ingest",
            status=dg.DagsterRunStatus.STARTED,
            tags={**request.tags, "dagster/partition": request.partition_key, PID_TAG: str(worker.pid)},
        )
        instance.run_storage.add_run(run)

        retry = sensor_tick(instance, result.cursor)

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert [r.run_key for r in retry.run_requests] == [f"{request.run_key}:retry:{run.run_id}"]
