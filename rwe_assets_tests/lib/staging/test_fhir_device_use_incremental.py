"""A Device and the Procedure that dates it (focalDevice) arriving in different batches: the run of
the later batch must see both, as a full build does, so it falls back to a full staging run
(incremental_scope CROSS_LINKS). Red without the procedure -> device link: the run of b2 stays
incremental and the Device stays NO_USE_DATE."""

from __future__ import annotations

from rwe_assets.lib.staging import incremental_state
from rwe_assets_tests.lib.staging.test_fhir_device_use import IMPLANT, device, procedure
from rwe_assets_tests.lib.staging.test_fhir_r4 import encounter, fhir_registry, ndjson, patient, staged
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn


def test_a_procedure_in_a_later_batch_dates_a_device_staged_before(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = fhir_registry()
    b1 = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Device.000.ndjson": ndjson(device("pm1")),
    }
    b2 = {"Procedure.000.ndjson": ndjson(procedure("pr1", "2020-03-01T09:00:00-05:00", ("pm1", IMPLANT)))}
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [b1, b2])
    assert "links a device" in reports[-1].reason
    devices = [e["record_key"] for e in staged(lake_dir, "event") if e["event_kind"] == "device"]
    assert devices == ["Device/pm1"]
    assert_equals_full_build(lake_dir, registry)
