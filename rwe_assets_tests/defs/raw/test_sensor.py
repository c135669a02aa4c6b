"""The landing sensor, evaluated with Dagster's test context."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest

from rwe_assets.defs.raw import build_landing_sensor
from rwe_assets.resources import RweConfig
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\n"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(autouse=True)
def linkage_key(monkeypatch):
    """These batches are not demo data: without a key the sensor would refuse them (tested below)."""
    monkeypatch.setenv("RWE_LINKAGE_KEY", "sensor-test-key-0123456789")


def evaluate(sensor, instance, data_dir, cursor=None, settle=0.0):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"rwe": RweConfig(data_dir=str(data_dir), landing_settle_seconds=settle)},
    )
    result = sensor(context)
    # Apply the partition requests the way the daemon would.
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_a_new_batch_gets_exactly_one_run(registry, tmp_path, instance):
    sensor = build_landing_sensor(registry)
    land(tmp_path / "landing", "clinic", "2024-06-01", {"patients.csv": PATIENTS})

    first = evaluate(sensor, instance, tmp_path)
    assert [r.partition_key for r in first.run_requests] == ["clinic__2024-06-01"]
    assert instance.get_dynamic_partitions("batches_clinic") == ["clinic__2024-06-01"]
    assert instance.get_dynamic_partitions("batches_fhir") == []  # each source lists its own batches
    assert first.run_requests[0].job_name == "raw_ingest_clinic"
    assert {k.to_user_string() for k in first.run_requests[0].asset_selection} == {
        "raw/clinic/patients",
        "raw/clinic/conditions",
    }

    second = evaluate(sensor, instance, tmp_path, cursor=first.cursor)
    assert second.run_requests == []
    assert second.skip_reason is not None


def test_each_source_and_batch_is_its_own_partition(registry, tmp_path, instance):
    sensor = build_landing_sensor(registry)
    land(tmp_path / "landing", "clinic", "b1", {"patients.csv": PATIENTS})
    land(tmp_path / "landing", "clinic", "b2", {"patients.csv": PATIENTS})  # the same files again
    land(tmp_path / "landing", "fhir", "b1", {"Patient.ndjson": '{"resourceType": "Patient"}\n'})
    result = evaluate(sensor, instance, tmp_path)
    assert sorted((r.job_name, r.partition_key) for r in result.run_requests) == [
        ("raw_ingest_clinic", "clinic__b1"),
        ("raw_ingest_clinic", "clinic__b2"),
        ("raw_ingest_fhir", "fhir__b1"),
    ]
    assert sorted(instance.get_dynamic_partitions("batches_clinic")) == ["clinic__b1", "clinic__b2"]
    assert instance.get_dynamic_partitions("batches_fhir") == ["fhir__b1"]


def test_a_batch_still_being_written_waits_for_the_settle_time(registry, tmp_path, instance):
    sensor = build_landing_sensor(registry)
    land(tmp_path / "landing", "clinic", "b1", {"patients.csv": PATIENTS})
    waiting = evaluate(sensor, instance, tmp_path, settle=3600)
    assert waiting.run_requests == [] and "settling" in waiting.skip_reason.skip_message
    ready = evaluate(sensor, instance, tmp_path, cursor=waiting.cursor, settle=0)
    assert [r.partition_key for r in ready.run_requests] == ["clinic__b1"]


def test_a_changed_batch_gets_one_more_run(registry, tmp_path, instance):
    sensor = build_landing_sensor(registry)
    folder = land(tmp_path / "landing", "clinic", "b1", {"patients.csv": PATIENTS})
    first = evaluate(sensor, instance, tmp_path)
    (folder / "patients.csv").write_text(PATIENTS + "p2,2000-01-01,Bo\n")
    earlier = time.time() - 60
    os.utime(folder / "patients.csv", (earlier, earlier))
    second = evaluate(sensor, instance, tmp_path, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["clinic__b1"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert set(json.loads(second.cursor)) == {"clinic__b1"}


def test_invalid_batch_names_and_markers_are_not_batches(registry, tmp_path, instance):
    sensor = build_landing_sensor(registry)
    land(tmp_path / "landing", "clinic", "bad__name", {"patients.csv": PATIENTS})
    land(tmp_path / "landing", "clinic", ".partial", {"patients.csv": PATIENTS})
    land(tmp_path / "landing", "clinic", "_tmp", {"patients.csv": PATIENTS})
    assert evaluate(sensor, instance, tmp_path).run_requests == []


def test_a_batch_ingested_by_the_rwe_command_is_not_run_again(registry, tmp_path, instance):
    from rwe_assets.defs.jobs import raw_ingest_jobs, run_landed_batches
    from rwe_assets.defs.raw import build_raw_assets

    land(tmp_path / "landing", "clinic", "b1", {"patients.csv": PATIENTS})
    defs = dg.Definitions(
        assets=build_raw_assets(registry),
        jobs=raw_ingest_jobs(registry),
        resources={"rwe": RweConfig(data_dir=str(tmp_path))},
    )
    [(key, result)] = run_landed_batches(defs, instance, tmp_path / "landing", registry)
    assert (key, result.success, result.dagster_run.job_name) == ("clinic__b1", True, "raw_ingest_clinic")
    assert instance.get_dynamic_partitions("batches_clinic") == ["clinic__b1"]

    sensor = build_landing_sensor(registry)
    assert evaluate(sensor, instance, tmp_path).run_requests == []


def test_a_batch_of_real_data_without_a_key_is_refused_before_ingest(
    registry, tmp_path, instance, monkeypatch
):
    monkeypatch.delenv("RWE_LINKAGE_KEY")
    sensor = build_landing_sensor(registry)
    land(tmp_path / "landing", "clinic", "2024-06-01", {"patients.csv": PATIENTS})
    refused = evaluate(sensor, instance, tmp_path)
    assert refused.run_requests == [] and "rwe init" in refused.skip_reason.skip_message
    assert refused.cursor is None  # nothing marked seen: the batch runs once a key exists
    monkeypatch.setenv("RWE_LINKAGE_KEY", "sensor-test-key-0123456789")
    assert [r.partition_key for r in evaluate(sensor, instance, tmp_path).run_requests] == [
        "clinic__2024-06-01"
    ]
