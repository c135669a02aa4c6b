"""A FHIR R4 Device states no date of use: manufactureDate is when it was made (Synthea writes the day it
was given less 21 days), expirationDate its shelf life. The date the source states is that of a Procedure
whose focalDevice manipulates the Device (an implantation, a fitting; a removal ends the use). The
device exposure starts there, or the Device is quarantined NO_USE_DATE: the CDM states no start the
source does not say. Hand-written resources, shaped as Synthea writes Device (US Core implantable)."""

from __future__ import annotations

from datetime import datetime

from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    assert_reconciles,
    cc,
    encounter,
    fhir_registry,
    ndjson,
    patient,
    quarantined,
    retired,
    stage,
    staged,
)

SNOMED = "http://snomed.info/sct"
REMOVAL = {"coding": [{"system": SNOMED, "code": "129303008", "display": "Removal - action"}]}
IMPLANT = {"coding": [{"system": SNOMED, "code": "129336009", "display": "Implantation - action"}]}


def device(did: str, **fields) -> dict:
    return {
        "resourceType": "Device",
        "id": did,
        "udiCarrier": [{"deviceIdentifier": "96702913868313", "carrierHRF": "(01)96702913868313(11)200209"}],
        "status": "active",
        "manufactureDate": "2020-02-09T09:00:00-05:00",
        "expirationDate": "2045-02-09T09:00:00-05:00",
        "type": cc(SNOMED, "14106009", "Cardiac pacemaker"),
        "patient": {"reference": "Patient/p1"},
        **fields,
    }


def procedure(
    pid: str, when: str, *devices: tuple[str, dict | None], status: str = "completed", **fields
) -> dict:
    focal = [{"manipulated": {"reference": f"Device/{d}"}} | ({"action": a} if a else {}) for d, a in devices]
    return {
        "resourceType": "Procedure",
        "id": pid,
        "status": status,
        "code": cc(SNOMED, "307280005", "Implantation of cardiac pacemaker"),
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "performedPeriod": {"start": when, "end": when},
        "focalDevice": focal,
        **fields,
    }


def test_a_device_starts_when_a_procedure_puts_it_to_use_and_ends_when_one_removes_it(tmp_path):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Device.000.ndjson": ndjson(
            device("pm1"),  # implanted, then removed
            device("pm2"),  # fitted twice: the first use starts it
            device("pm3"),  # no procedure names it: no date of use
            device("pm4"),  # only a procedure entered in error names it
        ),
        "Procedure.000.ndjson": ndjson(
            procedure("pr1", "2020-03-01T09:00:00-05:00", ("pm1", IMPLANT), ("pm2", None)),
            procedure("pr2", "2021-05-02T10:00:00-05:00", ("pm1", REMOVAL)),
            procedure("pr3", "2020-01-15T08:00:00-05:00", ("pm2", None)),
            procedure("pr4", "2020-04-01T08:00:00-05:00", ("pm4", IMPLANT), status="entered-in-error"),
        ),
    }
    lake_dir, report = stage(tmp_path, fhir_registry(), files)
    devices = {e["record_key"]: e for e in staged(lake_dir, "event") if e["event_kind"] == "device"}
    assert {k: (e["start_datetime"], e["end_datetime"]) for k, e in devices.items()} == {
        "Device/pm1": (datetime(2020, 3, 1, 9, 0), datetime(2021, 5, 2, 10, 0)),
        "Device/pm2": (datetime(2020, 1, 15, 8, 0), None),
    }
    assert [q for q in quarantined(lake_dir) if q[1] == "device"] == [
        ("event", "device", 3, "NO_USE_DATE", "Procedure.focalDevice"),
        ("event", "device", 4, "NO_USE_DATE", "Procedure.focalDevice"),
    ]
    assert ("event", "procedure", 4, "ENTERED_IN_ERROR", "status") in retired(lake_dir)
    assert_reconciles(report)


def test_a_device_entered_in_error_is_retired_before_its_date_is_looked_for(tmp_path):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Device.000.ndjson": ndjson(device("pm1", status="entered-in-error")),
        "Procedure.000.ndjson": ndjson(procedure("pr1", "2020-03-01T09:00:00-05:00", ("pm1", IMPLANT))),
    }
    lake_dir, _ = stage(tmp_path, fhir_registry(), files)
    assert ("event", "device", 1, "ENTERED_IN_ERROR", "status") in retired(lake_dir)
    assert [e for e in staged(lake_dir, "event") if e["event_kind"] == "device"] == []
