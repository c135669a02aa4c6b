"""A batch dropped into the landing zone reaches the published database with no manual step: the
landing sensor and the refresh sensor are ticked here as the daemon would tick them. The refresh
sensor reacts to asset events, whatever recorded them (an ad-hoc asset job, the build, no run)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import dagster as dg
import duckdb

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.definitions import defs
from rwe_assets.defs.automation.recovery import HOST_TAG, PID_TAG
from rwe_assets.defs.automation.refresh import SENSOR_NAME, VOCABULARY_STORE, monitored_keys
from rwe_assets.defs.cdm.assets import VOCABULARY_STORE as CDM_VOCABULARY_STORE
from rwe_assets.defs.raw import raw_key
from rwe_assets.lib.sources import load_registry
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
    runs = [
        defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            asset_selection=list(request.asset_selection),
            tags=request.tags,
        )
        for request in result.run_requests
    ]
    return result.cursor, runs


def tick_refresh_sensor(instance, cursor=None):
    """One tick of the asset sensor, as the daemon runs it. Returns its SensorExecutionData (run
    requests, skip message, next cursor)."""
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_multi_asset_sensor_context(
        monitored_assets=monitored_keys(load_registry()), instance=instance, cursor=cursor, definitions=defs
    )
    return sensor.evaluate_tick(context)


def build_after_refresh(instance, cursor):
    """The refresh sensor's tick, and the one build it requests, executed. Returns (cursor, build)."""
    tick = tick_refresh_sensor(instance, cursor)
    [request] = tick.run_requests
    build = defs.resolve_job_def("build").execute_in_process(instance=instance, tags=request.tags)
    return tick.cursor, build


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
        assert [(run.success, run.dagster_run.job_name) for run in raw_runs] == [
            (True, "raw_ingest_ehr_sample")
        ]
        refresh_cursor, build = build_after_refresh(instance, None)
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
        refresh_cursor, build = build_after_refresh(instance, refresh_cursor)
        assert build.success
        assert build.get_asset_check_evaluations() and red_error_checks(build) == []
        assert published.stat().st_mtime_ns > first_version
        assert published_persons(published) == 27 + 13
        # The builds' own materializations (vocab/store among them) request nothing.
        assert tick_refresh_sensor(instance, refresh_cursor).run_requests == []


def test_sensors_are_on_by_default_and_analyst_facing_assets_have_freshness_policies():
    for name in ("landing_sensor", SENSOR_NAME):
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
            job_name=request.job_name,
            status=dg.DagsterRunStatus.STARTED,
            tags={**request.tags, "dagster/partition": request.partition_key, PID_TAG: str(worker.pid)},
        )
        instance.run_storage.add_run(run)

        retry = sensor_tick(instance, result.cursor)

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert [r.run_key for r in retry.run_requests] == [f"{request.run_key}:retry:{run.run_id}"]


# The refresh sensor on its own: asset events from runs of any kind, ticked without running the build.


def land_samples(data_dir):
    shutil.copytree(SAMPLE_DIR / "fhir13", data_dir / "landing" / "ehr_sample_fhir" / "fhir13")


def materialize_ad_hoc(instance, source, partition_key):
    """A raw partition materialized by an ad-hoc asset job (dg.materialize: what the asset graph's
    'Materialize' does), not by the source's raw job."""
    from rwe_assets.defs.partitions import register_batch

    register_batch(instance, source, partition_key)
    assets = [a for a in defs.resolve_all_asset_specs() if a.key.path[:2] == ["raw", source]]
    raw = defs.resolve_assets_def(assets[0].key)
    result = dg.materialize([raw], partition_key=partition_key, instance=instance)  # the code location's rwe
    assert result.success and result.dagster_run.job_name != "build"
    return result


def fake_run(instance, job_name, status=dg.DagsterRunStatus.SUCCESS) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name=job_name, status=status)
    instance.run_storage.add_run(run)
    return run


def record_materialization(instance, run, key):
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name=run.job_name,
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(key)),
    )
    instance.report_dagster_event(event, run_id=run.run_id)


def test_the_sensor_watches_every_raw_asset_and_the_vocabulary_store():
    sensor_keys = set(monitored_keys(load_registry()))
    raw_keys = {s.key for s in defs.resolve_all_asset_specs() if s.key.path[0] == "raw"}
    assert VOCABULARY_STORE == CDM_VOCABULARY_STORE
    assert sensor_keys == raw_keys | {VOCABULARY_STORE}


def test_an_ad_hoc_run_or_several_runs_events_request_one_build_and_only_once(tmp_path, monkeypatch):
    """Also: several events from several runs (the ad-hoc one, a UI run's, a runless one) make one
    build. Both ticks that see them start from the same cursor, so one real ad-hoc run serves both."""
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    land_samples(tmp_path)
    with dg.instance_for_test() as instance:
        empty = tick_refresh_sensor(instance)
        assert empty.run_requests == []
        materialize_ad_hoc(instance, "ehr_sample_fhir", "ehr_sample_fhir__fhir13")
        raw_fhir = [k for k in monitored_keys(load_registry()) if k.path[:2] == ["raw", "ehr_sample_fhir"]]
        tick = tick_refresh_sensor(instance, empty.cursor)
        [request] = tick.run_requests
        assert request.job_name in (None, "build") and request.tags["rwe/trigger"] == "asset_event"
        assert int(request.tags["rwe/new_materializations"]) == len(raw_fhir)
        assert tick_refresh_sensor(instance, tick.cursor).run_requests == []  # consumed

        record_materialization(instance, fake_run(instance, "__ASSET_JOB"), VOCABULARY_STORE)  # UI
        instance.report_runless_asset_event(dg.AssetMaterialization(raw_key("lab", "variant_call")))  # no run
        several = tick_refresh_sensor(instance, empty.cursor)  # the ad-hoc run's events unread again
        [request] = several.run_requests
        assert int(request.tags["rwe/new_materializations"]) == len(raw_fhir) + 2


def test_the_builds_own_outputs_request_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        record_materialization(instance, fake_run(instance, "build"), VOCABULARY_STORE)
        tick = tick_refresh_sensor(instance)
        assert tick.run_requests == [] and "by the build itself" in tick.skip_message
        # The same asset materialized outside the build (a new vocabulary) does request one.
        record_materialization(instance, fake_run(instance, "__ASSET_JOB"), VOCABULARY_STORE)
        assert len(tick_refresh_sensor(instance, tick.cursor).run_requests) == 1


def test_events_of_a_run_in_progress_wait_for_its_end(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        run = fake_run(instance, "raw_ingest_lab", status=dg.DagsterRunStatus.STARTED)
        record_materialization(instance, run, raw_key("lab", "variant_call"))
        waiting = tick_refresh_sensor(instance)
        assert waiting.run_requests == [] and run.run_id in waiting.skip_message
        record_materialization(instance, run, raw_key("lab", "sample_manifest"))
        instance.report_run_failed(run)  # a failed raw run that stored rows still gets them built
        tick = tick_refresh_sensor(instance, waiting.cursor)
        [request] = tick.run_requests
        assert request.tags["rwe/new_materializations"] == "2"


def test_events_a_later_build_already_read_request_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        record_materialization(instance, fake_run(instance, "raw_ingest_lab"), raw_key("lab", "variant_call"))
        build = fake_run(instance, "build")  # `rwe ingest` builds right after its raw runs
        tick = tick_refresh_sensor(instance)
        assert tick.run_requests == [] and build.run_id in tick.skip_message
