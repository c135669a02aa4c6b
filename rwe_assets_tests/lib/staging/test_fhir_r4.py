"""Staging of FHIR R4 bulk NDJSON (profile fhir_r4): mapping, code choice, quarantine and reconciliation.

Resources are written here as Python dicts shaped the way Synthea writes FHIR R4 (references as
"Patient/<id>", "urn:uuid:<id>" or conditional "Practitioner?identifier=<system>|<value>").
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry, parse_registry
from rwe_assets.lib.staging.build import SQL_DIR, build_staging, staging_connection
from rwe_assets.lib.staging.lifecycle import create_batch_info
from rwe_assets_tests.conftest import land

PROFILE_DIR = SQL_DIR / "fhir_r4"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
LOCAL_SYSTEM = "http://hospital.example.org/codes"
NPI_REF = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999912345"
ORG_REF = "Organization?identifier=https://github.com/synthetichealth/synthea|org1"
NOT_COMPARED = ("_batch_id", "_source_file", "_ingested_at", "_version_at")


@pytest.fixture
def registry():
    return fhir_registry()


def fhir_registry():
    """The project's FHIR source (its entity list), alone and staged with the fhir_r4 profile."""
    project = load_registry().get("ehr_site_b")
    document = {
        "sources": [
            {
                "name": "site",
                "kind": "ehr",
                "format": "ndjson",
                "extract": "incremental",
                "owner": "test",
                "staging_profile": "fhir_r4",
                "entities": [{"name": name} for name in project.entity_names],
            }
        ]
    }
    return parse_registry(document)


def ndjson(*resources: dict) -> str:
    return "".join(json.dumps(resource) + "\n" for resource in resources)


def stage(tmp_path: Path, registry, files: dict[str, str]):
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    land(landing, "site", "b1", files)
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    return lake_dir, build_staging(lake_dir, registry)


def staged(lake_dir: Path, name: str) -> list[dict]:
    """Staged rows without batch/file/ingest-time provenance, sorted by record key."""
    rows = lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()
    rows = [{k: v for k, v in row.items() if k not in NOT_COMPARED} for row in rows]
    return sorted(rows, key=lambda row: row["record_key"])


def quarantined(lake_dir: Path, table: str = "_quarantine") -> list[tuple]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", table)).to_pylist()
    return sorted(
        (r["staging_table"], r["_source_entity"], r["_line_number"], r["reason_code"], r["field"])
        for r in rows
    )


def retired(lake_dir: Path) -> list[tuple]:
    return quarantined(lake_dir, "_retired")


def assert_reconciles(report, fanout: dict[tuple[str, str], int] | None = None) -> None:
    """raw rows + fan-out = staged + quarantined + merged for every (table, raw entity); an Observation
    with n components yields n rows, so `fanout` gives the extra rows per (table, entity)."""
    fanout = fanout or {}
    assert report.reconciliation
    for row in report.reconciliation:
        assert row.unaccounted == 0, row
        assert row.fanout == fanout.get((row.table, row.source_entity), 0), row


def cc(system: str | None, code: str | None, display: str | None = None) -> dict:
    coding = {
        key: value for key, value in (("system", system), ("code", code), ("display", display)) if value
    }
    return {"coding": [coding], "text": display}


def patient(pid: str | None = "p1", **fields) -> dict:
    resource = {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1980-01-02",
        "name": [{"use": "official", "family": "Lee12", "given": ["Ann34", "Marie5"], "prefix": ["Ms."]}],
    }
    if pid is None:
        del resource["id"]
    resource.update(fields)
    return resource


def encounter(eid: str, subject: str | None = "Patient/p1", klass: str | None = "AMB", **fields) -> dict:
    resource = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
        "type": [cc(SNOMED, "185347001", "Encounter for problem (procedure)")],
        "subject": {"reference": subject},
        "participant": [{"individual": {"reference": NPI_REF, "display": "Dr. X"}}],
        "period": {"start": "2020-03-01T09:00:00-05:00", "end": "2020-03-01T10:00:00-05:00"},
        "serviceProvider": {"reference": ORG_REF},
    }
    if klass is None:
        del resource["class"]
    if subject is None:
        del resource["subject"]
    resource.update(fields)
    return resource


def condition(cid: str | None, subject="Patient/p1", enc="Encounter/e1", code=None, **fields) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "code": code or cc(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
        "subject": {"reference": subject},
        "encounter": {"reference": enc},
        "onsetDateTime": "2020-03-01T09:30:00-05:00",
        "recordedDate": "2020-03-01T09:30:00-05:00",
    }
    if cid is None:
        del resource["id"]
    resource.update(fields)
    return resource


def observation(oid: str, **fields) -> dict:
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2020-03-01T09:15:00-05:00",
    }
    resource.update(fields)
    return resource


EVENT_DEFAULTS = {
    "source_system": "site",
    "source_person_id": "p1",
    "visit_key": "e1",
    "start_datetime": datetime(2020, 3, 1, 9, 0),
    "end_datetime": None,
    "value_as_number": None,
    "value_as_string": None,
    "unit_source_value": None,
    "quantity": None,
    "days_supply": None,
    "provider_key": None,
    "claim_type": None,  # set by claims profiles only
    "condition_status": None,
    "refills": None,
    "value_code": None,  # a coded result (FHIR valueCodeableConcept)
    "value_vocabulary_id": None,
    "allergy_type": None,  # set for allergies whose source says allergy or intolerance
}


def event(
    record_key: str, entity: str, line: int, kind: str, code, vocabulary, description, **fields
) -> dict:
    row = dict(
        EVENT_DEFAULTS, record_key=record_key, _source_entity=entity, _line_number=line, event_kind=kind
    )
    row.update(code=code, vocabulary_id=vocabulary, code_description=description, **fields)
    return row


def test_patient_demographics_and_pii(tmp_path, registry):
    synthea_patient = patient(
        "p1",
        extension=[
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                            "display": "White",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                "extension": [{"url": "text", "valueString": "Not Hispanic or Latino"}],
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": "Eve Stone",
            },
        ],
        identifier=[
            {"system": "https://github.com/synthetichealth/synthea", "value": "p1"},
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]
                },
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": "999-11-2222",
            },
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "DL"}]
                },
                "system": "urn:oid:2.16.840.1.113883.4.3.25",
                "value": "S99912345",
            },
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PPN"}]
                },
                "system": "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                "value": "X1234567X",
            },
        ],
        name=[
            {"use": "maiden", "family": "Stone56", "given": ["Ann34"]},
            {"use": "official", "family": "Lee12", "given": ["Ann34", "Marie5"], "prefix": ["Mrs."]},
        ],
        telecom=[
            {"system": "email", "value": "ann@example.com"},
            {"system": "phone", "value": "555-123-4567"},
        ],
        deceasedDateTime="2021-05-06T21:00:00-04:00",  # 2021-05-07 01:00 UTC, but May 6 where he died
        address=[
            {"use": "old", "line": ["9 Old Rd"], "city": "Salem", "state": "MA", "postalCode": "01970"},
            {
                "line": ["1 Main St", "Apt 2"],
                "city": "Boston",
                "district": "Suffolk County",
                "state": "MA",
                "postalCode": "02110",
            },
        ],
    )
    lake_dir, report = stage(tmp_path, registry, {"Patient.000.ndjson": ndjson(synthea_patient)})

    assert staged(lake_dir, "person_source") == [
        {
            "source_system": "site",
            "record_key": "p1",
            "_source_entity": "patient",
            "_line_number": 1,
            "source_person_id": "p1",
            "birth_date": date(1980, 1, 2),
            "birth_year": 1980,
            "birth_month": 1,
            "birth_date_flag": None,
            "record_updated": None,
            "death_date": date(2021, 5, 6),
            "gender_source_value": "female",
            "race_source_value": "White",
            "ethnicity_source_value": "Not Hispanic or Latino",
            "city": "Boston",
            "state": "MA",
            "zip": "02110",
            "county": "Suffolk County",
        }
    ]
    assert staged(lake_dir, "person_pii") == [
        {
            "source_system": "site",
            "record_key": "p1",
            "_source_entity": "patient",
            "_line_number": 1,
            "source_person_id": "p1",
            "given_name": "Ann34",
            "family_name": "Lee12",
            "maiden_name": "Stone56",
            "birth_date": date(1980, 1, 2),
            "birth_year": 1980,
            "birth_month": 1,
            "sex": "female",
            "ssn": "999-11-2222",
            "address_line": "1 Main St Apt 2",
            "city": "Boston",
            "state": "MA",
            "zip": "02110",
            "phone": "555-123-4567",
            "email": "ann@example.com",  # telecom system email: linkage only
            "drivers_license": "S99912345",
            "passport": "X1234567X",
            "contact_names": None,  # no Patient.contact
            # typed by their v2-0203 codes; the untyped Synthea id is a number its system assigns
            "identifiers": [
                {
                    "type": "drivers_license",
                    "system": "urn:oid:2.16.840.1.113883.4.3.25",
                    "value": "S99912345",
                },
                {"type": "national_id", "system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-11-2222"},
                {"type": "other", "system": "https://github.com/synthetichealth/synthea", "value": "p1"},
                {
                    "type": "passport",
                    "system": "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                    "value": "X1234567X",
                },
            ],
        }
    ]
    assert_reconciles(report)


def test_encounter_class_mapping_and_references(tmp_path, registry):
    encounters = [
        encounter("e-imp", klass="IMP"),
        encounter("e-emer", klass="EMER"),
        encounter("e-amb", klass="AMB"),
        encounter("e-hh", klass="HH"),
        encounter("e-vr", subject="urn:uuid:p1", klass="VR"),
        encounter("e-obs", subject="https://ehr.example/fhir/Patient/p1/_history/3", klass="OBSENC"),
        # no class; a local type coding before the SNOMED one: the known vocabulary wins; no end
        encounter(
            "e-none",
            klass=None,
            type=[
                {
                    "coding": [
                        {"system": LOCAL_SYSTEM, "code": "WALKIN"},
                        {"system": SNOMED, "code": "308335008"},
                    ]
                }
            ],
            period={"start": "2020-03-02T08:00:00Z"},
            participant=[{"individual": {"reference": "Practitioner/dr1"}}],
            serviceProvider={"reference": "Organization/org2"},
        ),
    ]
    lake_dir, report = stage(
        tmp_path,
        registry,
        {"Patient.000.ndjson": ndjson(patient("p1")), "Encounter.000.ndjson": ndjson(*encounters)},
    )
    visits = {v["record_key"]: v for v in staged(lake_dir, "visit")}
    assert {k: (v["visit_class"], v["source_value"]) for k, v in visits.items()} == {
        "e-imp": ("inpatient", "IMP"),
        "e-emer": ("emergency", "EMER"),
        "e-amb": ("ambulatory", "AMB"),
        "e-hh": ("home", "HH"),
        "e-vr": ("virtual", "VR"),
        "e-obs": ("obsenc", "OBSENC"),
        "e-none": ("other", None),
    }
    assert {v["source_person_id"] for v in visits.values()} == {"p1"}
    assert visits["e-amb"] == {
        "source_system": "site",
        "record_key": "e-amb",
        "_source_entity": "encounter",
        "_line_number": 3,
        "source_person_id": "p1",
        "visit_class": "ambulatory",
        "start_datetime": datetime(2020, 3, 1, 9, 0),
        "end_datetime": datetime(2020, 3, 1, 10, 0),
        "code": "185347001",
        "vocabulary_id": "SNOMED",
        "source_value": "AMB",
        "provider_key": "9999912345",  # conditional reference: the identifier value (the NPI)
        "care_site_key": "org1",
        "claim_type": None,
    }
    none = visits["e-none"]
    assert (none["code"], none["vocabulary_id"], none["end_datetime"]) == ("308335008", "SNOMED", None)
    assert (none["provider_key"], none["care_site_key"]) == ("dr1", "org2")
    assert_reconciles(report)


def test_clinical_events(tmp_path, registry):
    blood_pressure = observation(
        "bp1",
        code=cc(LOINC, "85354-9", "Blood pressure panel with all children optional"),
        component=[
            {
                "code": cc(LOINC, "8480-6", "Systolic blood pressure"),
                "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": cc(LOINC, "8462-4", "Diastolic blood pressure"),
                "valueQuantity": {"value": 80.5, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    )
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Condition.000.ndjson": ndjson(
            condition("c1", abatementDateTime="2020-04-01T09:30:00-04:00"),
            # a local code only: kept, its system URL as vocabulary_id (reported unmapped later)
            condition("c2", code=cc(LOCAL_SYSTEM, "DM2", "Diabetes (local)"), subject="urn:uuid:p1"),
            # ICD-10-CM first: the first coding with a known system is chosen, not the SNOMED one
            condition(
                "c3",
                code={
                    "coding": [
                        {"system": LOCAL_SYSTEM, "code": "X1"},
                        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "display": "T2DM"},
                        {"system": SNOMED, "code": "44054006"},
                    ]
                },
            ),
        ),
        "MedicationRequest.000.ndjson": ndjson(
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": cc(
                    RXNORM, "860975", "24 HR metformin 500 MG Extended Release Oral Tablet"
                ),
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "authoredOn": "2020-03-01T09:00:00-05:00",
                "requester": {"reference": NPI_REF},
                "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1.0}}]}],
                "dispenseRequest": {
                    "quantity": {"value": 60, "unit": "TAB"},
                    "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"},
                },
            },
            {
                "resourceType": "MedicationRequest",
                "id": "m2",
                "status": "active",
                "medicationCodeableConcept": cc(RXNORM, "314076", "lisinopril 10 MG Oral Tablet"),
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "authoredOn": "2020-03-01T09:00:00-05:00",
                "dosageInstruction": [{"timing": {"repeat": {"boundsDuration": {"value": 2, "code": "wk"}}}}],
            },
        ),
        "Observation.000.ndjson": ndjson(
            observation(
                "o1",
                code=cc(LOINC, "29463-7", "Body Weight"),
                valueQuantity={"value": 72.5, "unit": "kilogram", "system": UCUM, "code": "kg"},
            ),
            observation(
                "o2",
                code=cc(LOINC, "72166-2", "Tobacco smoking status"),
                valueCodeableConcept=cc(SNOMED, "266919005", "Never smoked tobacco (finding)"),
            ),
            observation(
                "o3", code=cc(LOINC, "8302-2", "Body Height"), valueQuantity={"value": 170, "unit": "cm"}
            ),
            blood_pressure,
        ),
        "Immunization.000.ndjson": ndjson(
            {
                "resourceType": "Immunization",
                "id": "i1",
                "status": "completed",
                "vaccineCode": cc(CVX, "140", "Influenza, seasonal, injectable, preservative free"),
                "patient": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "occurrenceDateTime": "2020-03-01T09:00:00-05:00",
                "primarySource": True,
            }
        ),
        "CareTeam.000.ndjson": ndjson(
            {"resourceType": "CareTeam", "id": "t1", "subject": {"reference": "Patient/p1"}}
        ),
    }
    lake_dir, report = stage(tmp_path, registry, files)

    assert staged(lake_dir, "event") == [
        event(
            "Condition/c1", "condition", 1, "condition", "44054006", "SNOMED",
            "Diabetes mellitus type 2 (disorder)",
            start_datetime=datetime(2020, 3, 1, 9, 30), end_datetime=datetime(2020, 4, 1, 9, 30),
        ),
        event(
            "Condition/c2", "condition", 2, "condition", "DM2", LOCAL_SYSTEM, "Diabetes (local)",
            start_datetime=datetime(2020, 3, 1, 9, 30),
        ),
        event(
            "Condition/c3", "condition", 3, "condition", "E11.9", "ICD10CM", "T2DM",
            start_datetime=datetime(2020, 3, 1, 9, 30),
        ),
        event("Immunization/i1", "immunization", 1, "immunization", "140", "CVX",
              "Influenza, seasonal, injectable, preservative free", quantity=1.0),
        event(
            "MedicationRequest/m1", "medicationrequest", 1, "drug", "860975", "RxNorm",
            "24 HR metformin 500 MG Extended Release Oral Tablet",
            quantity=60.0, days_supply=30, provider_key="9999912345",
        ),
        event("MedicationRequest/m2", "medicationrequest", 2, "drug", "314076", "RxNorm",
              "lisinopril 10 MG Oral Tablet", days_supply=14),
        event(
            "Observation/bp1#0", "observation", 4, "measurement", "8480-6", "LOINC",
            "Systolic blood pressure",
            start_datetime=datetime(2020, 3, 1, 9, 15), value_as_number=120.0, unit_source_value="mm[Hg]",
        ),
        event(
            "Observation/bp1#1", "observation", 4, "measurement", "8462-4", "LOINC",
            "Diastolic blood pressure",
            start_datetime=datetime(2020, 3, 1, 9, 15), value_as_number=80.5, unit_source_value="mm[Hg]",
        ),
        event(
            "Observation/o1", "observation", 1, "measurement", "29463-7", "LOINC", "Body Weight",
            start_datetime=datetime(2020, 3, 1, 9, 15), value_as_number=72.5, unit_source_value="kg",
        ),
        event(
            "Observation/o2", "observation", 2, "measurement", "72166-2", "LOINC", "Tobacco smoking status",
            start_datetime=datetime(2020, 3, 1, 9, 15), value_as_string="Never smoked tobacco (finding)",
            value_code="266919005", value_vocabulary_id="SNOMED",
        ),
        event(
            "Observation/o3", "observation", 3, "measurement", "8302-2", "LOINC", "Body Height",
            start_datetime=datetime(2020, 3, 1, 9, 15), value_as_number=170.0, unit_source_value="cm",
        ),
    ]  # fmt: skip
    assert quarantined(lake_dir) == []
    # The blood-pressure line yields two rows: one more than its raw row, for this entity only.
    assert_reconciles(report, fanout={("event", "observation"): 1})
    # CareTeam adds nothing the canonical model holds: it stays in raw and is not part of staging.
    assert "careteam" not in {r.source_entity for r in report.reconciliation}
    assert lake.read_table(lake.table_path(lake_dir, "raw", "site", "careteam")).num_rows == 1


def test_other_resource_types(tmp_path, registry):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "Procedure.000.ndjson": ndjson(
            {
                "resourceType": "Procedure",
                "id": "pr1",
                "status": "completed",
                "code": cc(SNOMED, "430193006", "Medication Reconciliation (procedure)"),
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "performedPeriod": {"start": "2020-03-01T09:00:00-05:00", "end": "2020-03-01T09:15:00-05:00"},
            },
            {
                "resourceType": "Procedure",
                "id": "pr2",
                "status": "completed",
                "code": cc(SNOMED, "171207006", "Depression screening (procedure)"),
                "subject": {"reference": "Patient/p1"},
                "performedDateTime": "2020-03-01T09:00:00-05:00",
                "performer": [{"actor": {"reference": "Practitioner/dr1"}}],
                "focalDevice": [{"manipulated": {"reference": "Device/dv1"}}],  # the device's date of use
            },
        ),
        "AllergyIntolerance.000.ndjson": ndjson(
            {
                "resourceType": "AllergyIntolerance",
                "id": "a1",
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "type": "allergy",
                "category": ["food"],
                "code": cc(SNOMED, "91935009", "Allergy to peanuts"),
                "patient": {"reference": "Patient/p1"},
                "recordedDate": "2020-03-01T09:00:00-05:00",
            }
        ),
        "Device.000.ndjson": ndjson(
            {
                "resourceType": "Device",
                "id": "dv1",
                "status": "active",
                "udiCarrier": [{"deviceIdentifier": "96702913868313"}],
                "serialNumber": "9866037",
                "manufactureDate": "2020-02-09T09:00:00-05:00",  # made, not used: no start
                "type": cc(SNOMED, "337414009", "Blood glucose meter (physical object)"),
                "patient": {"reference": "Patient/p1"},
            }
        ),
        "CarePlan.000.ndjson": ndjson(
            {
                "resourceType": "CarePlan",
                "id": "cp1",
                "status": "active",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                                "code": "assess-plan",
                            }
                        ]
                    },
                    cc(SNOMED, "698360004", "Diabetes self management plan"),
                ],
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "period": {"start": "2020-03-01T09:00:00-05:00"},
            }
        ),
        "ImagingStudy.000.ndjson": ndjson(
            {
                "resourceType": "ImagingStudy",
                "id": "is1",
                "status": "available",
                "subject": {"reference": "Patient/p1"},
                "encounter": {"reference": "Encounter/e1"},
                "started": "2020-03-01T09:00:00-05:00",
                "procedureCode": [cc(SNOMED, "399208008", "Plain chest X-ray")],
                "series": [
                    {"modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "DX"}}
                ],
            }
        ),
        "MedicationAdministration.000.ndjson": ndjson(
            {
                "resourceType": "MedicationAdministration",
                "id": "ma1",
                "status": "completed",
                "medicationCodeableConcept": cc(RXNORM, "1719286", "10 ML Furosemide 10 MG/ML Injection"),
                "subject": {"reference": "Patient/p1"},
                "context": {"reference": "Encounter/e1"},
                "effectiveDateTime": "2020-03-01T09:00:00-05:00",
            }
        ),
        "SupplyDelivery.000.ndjson": ndjson(
            {
                "resourceType": "SupplyDelivery",
                "id": "sd1",
                "status": "completed",
                "patient": {"reference": "Patient/p1"},
                "suppliedItem": {
                    "quantity": {"value": 2},
                    "itemCodeableConcept": cc(SNOMED, "409534002", "Disposable air-purifying respirator"),
                },
                "occurrenceDateTime": "2020-03-01T09:00:00-05:00",
            }
        ),
        "Practitioner.000.ndjson": ndjson(
            {
                "resourceType": "Practitioner",
                "id": "dr1",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999912345"}],
                "name": [{"family": "Doe", "given": ["Jo"]}],
                "gender": "male",
                "qualification": [
                    {"code": cc("http://nucc.org/provider-taxonomy", "208D00000X", "General Practice")}
                ],
            }
        ),
        "Organization.000.ndjson": ndjson(
            {
                "resourceType": "Organization",
                "id": "org1",
                "name": "GENERAL HOSPITAL",
                "address": [{"line": ["1 Care Way"], "city": "BOSTON", "state": "MA", "postalCode": "02110"}],
            }
        ),
    }
    lake_dir, report = stage(tmp_path, registry, files)

    events = {e["record_key"]: e for e in staged(lake_dir, "event")}
    assert {k: (e["event_kind"], e["code"], e["vocabulary_id"]) for k, e in events.items()} == {
        "AllergyIntolerance/a1": ("allergy", "91935009", "SNOMED"),
        "CarePlan/cp1": ("careplan", "698360004", "SNOMED"),
        "Device/dv1": ("device", "337414009", "SNOMED"),
        "ImagingStudy/is1": ("procedure", "399208008", "SNOMED"),
        "MedicationAdministration/ma1": ("drug", "1719286", "RxNorm"),
        "Procedure/pr1": ("procedure", "430193006", "SNOMED"),
        "Procedure/pr2": ("procedure", "171207006", "SNOMED"),
        "SupplyDelivery/sd1": ("device", "409534002", "SNOMED"),
    }
    assert {e["start_datetime"] for e in events.values()} == {datetime(2020, 3, 1, 9, 0)}
    assert events["Procedure/pr1"]["end_datetime"] == datetime(2020, 3, 1, 9, 15)
    assert (events["Procedure/pr2"]["visit_key"], events["Procedure/pr2"]["provider_key"]) == (None, "dr1")
    assert events["AllergyIntolerance/a1"]["value_as_string"] == "food"
    assert (events["Device/dv1"]["quantity"], events["SupplyDelivery/sd1"]["quantity"]) == (1.0, 2.0)
    assert "96702913868313" not in str(events["Device/dv1"])  # the UDI is not staged
    assert staged(lake_dir, "provider") == [
        {
            "source_system": "site",
            "record_key": "dr1",
            "_source_entity": "practitioner",
            "_line_number": 1,
            "provider_key": "9999912345",  # keyed by NPI: Synthea's references to practitioners are by NPI
            "care_site_key": None,
            "gender_source_value": "male",
            "specialty_source_value": "General Practice",
        }
    ]
    assert staged(lake_dir, "care_site") == [
        {
            "source_system": "site",
            "record_key": "org1",
            "_source_entity": "organization",
            "_line_number": 1,
            "care_site_key": "org1",
            "care_site_name": "GENERAL HOSPITAL",
            "city": "BOSTON",
            "state": "MA",
            "zip": "02110",
        }
    ]
    assert quarantined(lake_dir) == []
    assert_reconciles(report)


def test_invalid_resources_are_quarantined_with_reason_and_field(tmp_path, registry):
    files = {
        "Patient.000.ndjson": ndjson(
            patient("p1"),
            patient(None),  # line 2
            patient("p3", birthDate="1990-13-45"),  # line 3: impossible, staged with its year (issue 18)
            patient("p4", birthDate="2000-01-01", deceasedDateTime="1999-01-01T00:00:00Z"),  # line 4
            patient("p5", birthDate=None),  # line 5: no birth date, staged all the same (issue 18)
        ),
        "Encounter.000.ndjson": ndjson(
            encounter("e1"),
            encounter("e2", subject=None),  # line 2
            encounter("e3", period={"end": "2020-03-01T10:00:00Z"}),  # line 3
            encounter(
                "e4", period={"start": "2020-03-02T10:00:00Z", "end": "2020-03-01T10:00:00Z"}
            ),  # line 4
            encounter("e5", status="entered-in-error"),  # line 5
            encounter("e6", subject="Patient/ghost"),  # line 6
        ),
        "Condition.000.ndjson": ndjson(
            condition("c1"),
            condition(None),  # line 2
            condition("c3", code={"text": "diabetes, no coding"}),  # line 3
            condition("c4", subject="Patient/ghost"),  # line 4: the Patient was never sent
            condition("c5", enc="Encounter/e9"),  # line 5: the Encounter was never sent
            condition("c6", onsetDateTime="2020-02-30", recordedDate=None),  # line 6
            condition("c7", abatementDateTime="2020-01-01T00:00:00Z"),  # line 7: ends before onset
            condition("c8", subject="Patient/p4"),  # line 8: its Patient was quarantined
            condition("c9", subject=None),  # line 9
        ),
        "MedicationRequest.000.ndjson": ndjson(
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "medicationCodeableConcept": cc(RXNORM, "860975"),
                "subject": {"reference": "Patient/p1"},
                "authoredOn": "2020-03-01",
                "dispenseRequest": {"quantity": {"value": -2}},
            }
        ),
        "Observation.000.ndjson": ndjson(
            observation("o1", code=cc(LOINC, "29463-7"), valueQuantity={"value": "heavy", "unit": "kg"}),
            observation("o2", code=cc(LOINC, "29463-7"), effectiveDateTime=None),  # line 2
        ),
        "Procedure.000.ndjson": ndjson(
            {
                "resourceType": "Procedure",
                "id": "pr1",
                "status": "not-done",
                "code": cc(SNOMED, "430193006"),
                "subject": {"reference": "Patient/p1"},
                "performedDateTime": "2020-03-01",
            }
        ),
    }
    lake_dir, report = stage(tmp_path, registry, files)

    assert quarantined(lake_dir) == [
        ("event", "condition", 2, "MISSING_ID", "id"),
        ("event", "condition", 3, "MISSING_CODE", "code"),
        ("event", "condition", 4, "ORPHAN_PERSON", "source_person_id"),
        ("event", "condition", 5, "MISSING_VISIT", "visit_key"),
        ("event", "condition", 6, "INVALID_DATE", "onsetDateTime"),
        ("event", "condition", 7, "END_BEFORE_START", "abatementDateTime"),
        ("event", "condition", 8, "ORPHAN_PERSON", "source_person_id"),
        ("event", "condition", 9, "MISSING_PERSON", "subject"),
        ("event", "medicationrequest", 1, "NEGATIVE_QUANTITY", "dispenseRequest.quantity"),
        ("event", "observation", 1, "INVALID_NUMBER", "valueQuantity.value"),
        ("event", "observation", 2, "INVALID_DATE", "effective[x]"),
        ("person_pii", "patient", 2, "MISSING_ID", "id"),
        ("person_pii", "patient", 4, "ORPHAN_PERSON", "source_person_id"),
        ("person_source", "patient", 2, "MISSING_ID", "id"),
        ("person_source", "patient", 4, "BIRTH_AFTER_DEATH", "deceasedDateTime"),
        ("visit", "encounter", 2, "MISSING_PERSON", "subject"),
        ("visit", "encounter", 3, "INVALID_DATE", "period.start"),
        ("visit", "encounter", 4, "END_BEFORE_START", "period.end"),
        ("visit", "encounter", 6, "ORPHAN_PERSON", "source_person_id"),
    ]
    # the source's own status is not bad input: such a record is retired, with its reason
    assert retired(lake_dir) == [
        ("event", "procedure", 1, "NOT_DONE", "status"),
        ("visit", "encounter", 5, "ENTERED_IN_ERROR", "status"),
    ]
    assert report.retired_reasons == {("event", "NOT_DONE"): 1, ("visit", "ENTERED_IN_ERROR"): 1}
    persons = {p["source_person_id"]: p for p in staged(lake_dir, "person_source")}
    assert sorted(persons) == ["p1", "p3", "p5"]
    assert (persons["p3"]["birth_year"], persons["p3"]["birth_date_flag"]) == (1990, "INVALID_BIRTH_DATE")
    assert (persons["p5"]["birth_year"], persons["p5"]["birth_date_flag"]) == (None, "MISSING_BIRTH_DATE")
    assert [v["record_key"] for v in staged(lake_dir, "visit")] == ["e1"]
    assert [e["record_key"] for e in staged(lake_dir, "event")] == ["Condition/c1"]
    assert report.quarantine_reasons[("event", "ORPHAN_PERSON")] == 2
    assert report.quarantine_reasons[("event", "MISSING_VISIT")] == 1
    assert_reconciles(report)


def test_the_profile_macros_map_systems_and_references():
    con = staging_connection()
    # the profile's table macros read the raw views the framework registers first
    for entity in ("medication", "procedure"):
        con.execute(f"CREATE VIEW raw_{entity} AS SELECT '' AS resource_id, '' AS resource_json, "
                    "'' AS _batch_id, '' AS _source_file, NULL::TIMESTAMPTZ AS _ingested_at, 0 AS _line_number WHERE false")  # fmt: skip
    create_batch_info(con, SourceRegistry(()), {})  # and the batch order, which they read versions by
    con.execute((PROFILE_DIR / "_macros.sql").read_text())
    systems = con.execute(
        "SELECT rwe_fhir_vocabulary('http://snomed.info/sct/'), rwe_fhir_vocabulary(' http://LOINC.org '), "
        "rwe_fhir_vocabulary('urn:oid:2.16.840.1.113883.12.292'), rwe_fhir_vocabulary('http://example.org/local')"
    ).fetchone()
    assert systems == ("SNOMED", "LOINC", "CVX", None)
    references = con.execute(
        "SELECT rwe_fhir_ref('Patient/123'), rwe_fhir_ref('https://x/fhir/Patient/123/_history/2'), "
        "rwe_fhir_ref('urn:uuid:6f1c'), rwe_fhir_ref('Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999'), "
        "rwe_fhir_ref('')"
    ).fetchone()
    assert references == ("123", "123", "6f1c", "999", None)
    for path in PROFILE_DIR.glob("*/*.sql"):  # one definition: no file repeats the expressions
        text = path.read_text()
        assert "regexp_extract" not in text and "'http://snomed.info/sct'" not in text, path.name


def document(did: str, text: str | None = None, enc: str = "Encounter/e1", **fields) -> dict:
    """A DocumentReference shaped as Synthea writes it: the note as a base64 text/plain attachment."""
    import base64

    attachment = {"contentType": "text/plain; charset=utf-8"}
    if text is not None:
        attachment["data"] = base64.b64encode(text.encode()).decode()
    resource = {
        "resourceType": "DocumentReference",
        "id": did,
        "status": "superseded",
        "type": {"coding": [{"system": LOINC, "code": "34117-2", "display": "History and physical note"}]},
        "subject": {"reference": "Patient/p1"},
        "date": "2020-03-01T09:45:00-05:00",
        "author": [{"reference": NPI_REF}],
        "context": {"encounter": [{"reference": enc}]},
        "content": [{"attachment": attachment}],
    }
    resource.update(fields)
    return resource


def test_document_references_stage_as_notes_with_identifiers_redacted(tmp_path, registry):
    person = patient(
        "p1",
        address=[{"line": ["12 Elm St"], "city": "Boston", "state": "MA", "postalCode": "02110"}],
        telecom=[{"system": "phone", "value": "555-201-3344"}],
        identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-55-1234"}],
    )
    note = (
        "Ann34 Lee12 is a 40 year-old. Seen by Dr. Liane379 Kunze215.\n"
        "Lives at 12 Elm St, phone 555-201-3344, SSN 999-55-1234. ann Marie5 LEE; Annual review, Leeward."
    )
    pdf = document("d3", "not text")
    pdf["content"][0]["attachment"]["contentType"] = "application/pdf"
    files = {
        "Patient.000.ndjson": ndjson(person),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "DocumentReference.000.ndjson": ndjson(
            document("d1", note),
            document("d2", None),  # line 2: the text is only behind a URL
            pdf,  # line 3
            document("d4", "x", content=[{"attachment": {"contentType": "text/plain", "data": "!!!"}}]),
            document("d5", "x", status="entered-in-error"),  # line 5
            document("d6", "x", enc="Encounter/e9"),  # line 6: the Encounter was never sent
            document("d7", "x", date="2020-13-01"),  # line 7
        ),
    }
    lake_dir, report = stage(tmp_path, registry, files)

    assert staged(lake_dir, "note") == [
        {
            "source_system": "site",
            "record_key": "d1",
            "_source_entity": "documentreference",
            "_line_number": 1,
            "source_person_id": "p1",
            "visit_key": "e1",
            "note_datetime": datetime(2020, 3, 1, 9, 45),
            "code": "34117-2",
            "vocabulary_id": "LOINC",
            "title": "History and physical note",
            "note_text": "[REDACTED] [REDACTED] is a 40 year-old. Seen by Dr. [NAME] [NAME].\n"
            "Lives at [REDACTED], phone [REDACTED], SSN [REDACTED]. [REDACTED] [NAME] [REDACTED]; "
            "Annual review, Leeward.",
            "provider_key": "9999912345",
            "language": None,
        }
    ]
    assert [q for q in quarantined(lake_dir) if q[0] == "note"] == [
        ("note", "documentreference", 2, "MISSING_TEXT", "content.attachment.data"),
        ("note", "documentreference", 3, "UNSUPPORTED_CONTENT_TYPE", "content.attachment.contentType"),
        ("note", "documentreference", 4, "INVALID_TEXT", "content.attachment.data"),
        ("note", "documentreference", 6, "MISSING_VISIT", "visit_key"),
        ("note", "documentreference", 7, "INVALID_DATE", "date"),
    ]
    assert retired(lake_dir) == [("note", "documentreference", 5, "ENTERED_IN_ERROR", "status")]
    assert_reconciles(report)
