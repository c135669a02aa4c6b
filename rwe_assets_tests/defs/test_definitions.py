"""The code location loads, and the asset graph has the shape the docs describe."""

from __future__ import annotations

import dagster as dg

from rwe_assets.definitions import defs
from rwe_assets.lib.sources import load_registry


def test_definitions_load_and_raw_assets_follow_the_registry():
    registry = load_registry()
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    expected = {f"raw/{s.name}/{e}" for s in registry for e in s.entity_names}
    assert expected <= set(specs)
    for key in expected:
        source = key.split("/")[1]
        assert specs[key].group_name == f"raw_{source}"
        assert "delta" in specs[key].kinds
        assert specs[key].partitions_def.name == f"batches_{source}"  # its own batches, no one else's
    assert set(registry.names) == {
        "ehr_sample",
        "ehr_sample_fhir",
        "ehr_site_a",
        "ehr_site_b",
        "payer",
        "lab",
    }


def test_landing_sensor_is_on_by_default():
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for source in load_registry():
        job = defs.resolve_job_def(f"raw_ingest_{source.name}")
        assert job.partitions_def.name == f"batches_{source.name}"
        assert {k.path[1] for k in job.asset_layer.executable_asset_keys} == {source.name}
