"""Person rules in staging (issue 18): a missing, partial or impossible birth date never keeps a person
out of staging (so out of linkage); what the value still tells (year, month) is kept, and a flag says
why the date is not full. Every profile: Synthea CSV, FHIR R4, DE-SynPUF (beneficiaries and members),
the lab's sample manifest. Also the registry's person_priority field."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry, parse_registry
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.model import BIRTH_DATE_FLAGS
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_synpuf as synpuf
from rwe_assets_tests.lib.staging.test_build import PATIENTS_HEADER, patient, stage, staged, synthea_registry

# birth text -> (birth_date, birth_year, birth_month, birth_date_flag) as staged
BIRTHS = {
    "p-full": ("1980-01-02", (date(1980, 1, 2), 1980, 1, None)),
    "p-year": ("1948", (None, 1948, None, "PARTIAL_BIRTH_DATE")),
    "p-month": ("1948-08", (None, 1948, 8, "PARTIAL_BIRTH_DATE")),
    "p-impossible": ("2019-02-30", (None, 2019, 2, "INVALID_BIRTH_DATE")),
    "p-garbled": ("30/02/2019", (None, None, None, "INVALID_BIRTH_DATE")),
    "p-missing": ("", (None, None, None, "MISSING_BIRTH_DATE")),
}


def births(rows: list[dict]) -> dict[str, tuple]:
    return {
        r["source_person_id"]: (r["birth_date"], r["birth_year"], r["birth_month"], r.get("birth_date_flag"))
        for r in rows
    }


def expected(with_flag: bool = True) -> dict[str, tuple]:
    return {pid: parts if with_flag else parts[:3] + (None,) for pid, (_, parts) in BIRTHS.items()}


def test_synthea_patients_stay_whatever_their_birth_date(tmp_path):
    rows = "".join(patient(pid, birth=text) for pid, (text, _) in BIRTHS.items())
    lake_dir, report = stage(tmp_path, synthea_registry(), [("b1", {"patients.csv": PATIENTS_HEADER + rows})])

    assert births(staged(lake_dir, "person_source")) == expected()
    assert births(staged(lake_dir, "person_pii")) == expected(with_flag=False)  # linkage sees them all
    assert report.quarantine_reasons == {}
    assert all(r.unaccounted == 0 for r in report.reconciliation)
    assert {r["record_updated"] for r in staged(lake_dir, "person_source")} == {None}  # Synthea states none


def test_a_death_before_a_partial_birth_year_is_still_quarantined(tmp_path):
    rows = patient("p1", birth="1990", death="1985-01-01") + patient("p2", birth="1990", death="1990-06-01")
    lake_dir, report = stage(tmp_path, synthea_registry(), [("b1", {"patients.csv": PATIENTS_HEADER + rows})])
    assert report.quarantine_reasons == {
        ("person_source", "BIRTH_AFTER_DEATH"): 1,
        ("person_pii", "ORPHAN_PERSON"): 1,  # its identifiers go with it
    }
    assert [r["source_person_id"] for r in staged(lake_dir, "person_source")] == ["p2"]


def test_fhir_partial_birth_dates_keep_year_and_month(tmp_path):
    patients = [
        fhir.patient(pid, birthDate=text or None, meta={"lastUpdated": "2024-03-01T23:30:00-02:00"})
        for pid, (text, _) in BIRTHS.items()
    ]
    lake_dir, report = fhir.stage(
        tmp_path, fhir.fhir_registry(), {"Patient.000.ndjson": fhir.ndjson(*patients)}
    )

    assert births(fhir.staged(lake_dir, "person_source")) == expected()
    assert births(fhir.staged(lake_dir, "person_pii")) == expected(with_flag=False)
    assert report.quarantine_reasons == {}
    fhir.assert_reconciles(report)
    # meta.lastUpdated is an instant: 23:30 at -02:00 is 01:30 UTC the next day
    assert {r["record_updated"] for r in fhir.staged(lake_dir, "person_source")} == {
        datetime(2024, 3, 2, 1, 30)
    }


def test_desynpuf_beneficiaries_and_members_stay_without_a_valid_birth_date(tmp_path):
    members = (
        "DESYNPUF_ID,FIRST_NAME,LAST_NAME,BIRTH_DATE,SEX,SSN,ADDRESS,CITY,STATE,ZIP,PHONE\n"
        "B1,Ann,Lee,,2,,,,,,\n"
        "B2,Bo,Lee,1950-02-30,1,,,,,,\n"
    )
    batch = {
        "DE1_0_2009_Beneficiary_Summary_File_Sample_1.csv": synpuf.csv_text(
            "Beneficiary",
            [
                synpuf.beneficiary("B1", {1: "H1"}, birth=""),
                synpuf.beneficiary("B2", {1: "H1"}, birth="19500230"),
            ],
        ),
        "members.csv": members,
    }
    lake_dir, report = synpuf.stage_files(tmp_path, [("b1", batch)])

    persons = {r["source_person_id"]: r for r in synpuf.staged(lake_dir, "person_source")}
    assert births(persons.values()) == {
        "B1": (None, None, None, "MISSING_BIRTH_DATE"),
        "B2": (None, 1950, 2, "INVALID_BIRTH_DATE"),
    }
    assert persons["B1"]["record_updated"] == datetime(2009, 12, 31)  # the file's year
    assert births(synpuf.staged(lake_dir, "person_pii")) == {
        "B1": (None, None, None, None),
        "B2": (None, 1950, 2, None),
    }
    assert not [q for q in synpuf.quarantine(lake_dir) if q[0] in ("person_source", "person_pii")]
    synpuf.assert_reconciled(report)


def test_lab_manifest_persons_stay_without_a_valid_birth_date(tmp_path):
    lab = load_registry().get("lab")
    registry = SourceRegistry((lab,))
    manifest = (
        "SAMPLE_ID,SOURCE_PERSON_ID,SPECIMEN_TYPE,SPECIMEN_DATE,TEST_NAME,GENOME_BUILD,FIRST_NAME,LAST_NAME,"
        "BIRTH_DATE,SEX\n"
        "S1,L1,Blood,2024-05-01,Panel,GRCh38,Ann,Lee,1948-08,F\n"
        "S2,L2,Blood,2024-05-01,Panel,GRCh38,Bo,Lee,,M\n"
        "S3,L2,Blood,2024-07-01,Panel,GRCh38,Bo,Lee,,M\n"  # a second sample: the latest specimen dates L2
    )
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    land(landing, "lab", "b1", {"sample_manifest.csv": manifest})
    ingest_batch(lake_dir, landing, lab, "b1")
    report = build_staging(lake_dir, registry)

    persons = {r["source_person_id"]: r for r in staged(lake_dir, "person_source")}
    assert births(persons.values()) == {
        "L1": (None, 1948, 8, "PARTIAL_BIRTH_DATE"),
        "L2": (None, None, None, "MISSING_BIRTH_DATE"),
    }
    assert persons["L2"]["record_updated"] == datetime(2024, 7, 1)
    assert sorted(r["source_person_id"] for r in staged(lake_dir, "person_pii")) == ["L1", "L2"]
    assert not [k for k in report.quarantine_reasons if k[0] in ("person_source", "person_pii")]
    assert all(r.unaccounted == 0 for r in report.reconciliation if r.table.startswith("person"))


def test_every_flag_is_documented():
    assert {f for _, (_, (*_, f)) in BIRTHS.items() if f} == set(BIRTH_DATE_FLAGS)


def _registry_with(priority) -> SourceRegistry:
    source = {"name": "site", "kind": "ehr", "format": "csv", "extract": "snapshot", "owner": "t",
              "entities": [{"name": "patients"}], "person_priority": priority}  # fmt: skip
    return parse_registry({"sources": [source]})


def test_person_priority_is_an_optional_whole_number_from_one():
    assert _registry_with(2).get("site").person_priority == 2
    assert _registry_with(None).get("site").person_priority is None
    for bad in (0, -1, "1", 1.5, True):
        with pytest.raises(ConfigError, match="person_priority"):
            _registry_with(bad)
