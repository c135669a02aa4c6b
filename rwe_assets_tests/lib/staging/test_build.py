"""Staging of Synthea CSV: typing, quarantine rules, duplicates, references and reconciliation."""

from __future__ import annotations

import copy

import pyarrow as pa
import pytest

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry, parse_registry
from rwe_assets.lib.staging import build
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land

PATIENTS_HEADER = (
    "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,"
    "GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE\n"
)
ENCOUNTERS_HEADER = (
    "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,"
    "TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION\n"
)
CONDITIONS_HEADER = "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION\n"
MEDICATIONS_HEADER = (
    "START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,PAYER_COVERAGE,DISPENSES,TOTALCOST,"
    "REASONCODE,REASONDESCRIPTION\n"
)


def patient(pid, birth="1980-01-02", death="", gender="F", first="Ann", last="Lee"):
    return f"{pid},{birth},{death},999-11-2222,,,,{first},{last},,,,white,nonhispanic,{gender},,1 Main St,Boston,MA,Suffolk County,02110,,,0,0\n"


def encounter(eid, pid, start="2020-01-01T10:00:00Z", stop="2020-01-01T11:00:00Z", klass="ambulatory"):
    return f"{eid},{start},{stop},{pid},org1,prov1,pay1,{klass},185345009,Encounter for symptom,1,1,0,,\n"


@pytest.fixture
def registry():
    return synthea_registry()


def synthea_registry(*names: str):
    """The project's Synthea source, alone (as "site", or under each of `names`), so tests stay small."""
    project = load_registry().get("ehr_site_a")
    entities = [{"name": e.name, "required_columns": list(e.required_columns)} for e in project.entities]
    source = {
        "kind": "ehr",
        "format": "csv",
        "extract": "snapshot",
        "owner": "test",
        "staging_profile": "synthea_csv",
    }
    document = {"sources": [{"name": name, **source, "entities": entities} for name in names or ("site",)]}
    return parse_registry(copy.deepcopy(document))


def stage(tmp_path, registry, batches):
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    for batch, files in batches:
        land(landing, "site", batch, files)
        ingest_batch(lake_dir, landing, registry.get("site"), batch)
    return lake_dir, build_staging(lake_dir, registry)


def staged(lake_dir, name):
    return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()


def quarantined(lake_dir):
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "_quarantine")).to_pylist()
    return sorted((r["staging_table"], r["_line_number"], r["reason_code"], r["field"]) for r in rows)


def test_rows_are_typed_and_pii_stays_in_person_pii(tmp_path, registry):
    lake_dir, report = stage(
        tmp_path,
        registry,
        [
            (
                "b1",
                {
                    "patients.csv": PATIENTS_HEADER + patient("p1", death="2021-05-06"),
                    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
                    "conditions.csv": CONDITIONS_HEADER + "2020-01-01,,p1,e1,44054006,Diabetes\n",
                    "medications.csv": MEDICATIONS_HEADER
                    + "2020-01-01T10:00:00Z,2020-01-31T10:00:00Z,p1,pay1,e1,860975,Metformin,1,0,3,3,,\n",
                },
            )
        ],
    )
    (person,) = staged(lake_dir, "person_source")
    assert (person["source_person_id"], str(person["birth_date"]), str(person["death_date"])) == (
        "p1",
        "1980-01-02",
        "2021-05-06",
    )
    assert "Ann" not in str(person) and "Main St" not in str(person)
    (pii,) = staged(lake_dir, "person_pii")
    assert (pii["given_name"], pii["family_name"], pii["ssn"], pii["address_line"]) == (
        "Ann",
        "Lee",
        "999-11-2222",
        "1 Main St",
    )
    (visit,) = staged(lake_dir, "visit")
    assert (visit["record_key"], visit["visit_class"], str(visit["start_datetime"])) == (
        "e1",
        "ambulatory",
        "2020-01-01 10:00:00",
    )
    events = {e["event_kind"]: e for e in staged(lake_dir, "event")}
    assert (events["condition"]["code"], events["condition"]["vocabulary_id"]) == ("44054006", "SNOMED")
    assert (events["drug"]["vocabulary_id"], events["drug"]["days_supply"], events["drug"]["quantity"]) == (
        "RxNorm",
        10,  # 30 days over 3 fills: the supply of one fill
        3.0,
    )
    assert all(r.unaccounted == 0 for r in report.reconciliation)


def test_invalid_rows_are_quarantined_with_reason_and_field(tmp_path, registry):
    lake_dir, report = stage(
        tmp_path,
        registry,
        [
            (
                "b1",
                {
                    "patients.csv": PATIENTS_HEADER
                    + patient("p1")
                    + patient("p2", birth="1990-13-45")  # line 3: impossible date: staged, flagged
                    + patient("p3", birth="2000-01-01", death="1999-01-01")  # line 4: death before birth
                    + patient("p4", gender="X"),  # line 5: unknown gender is kept (concept 0 later)
                    "encounters.csv": ENCOUNTERS_HEADER
                    + encounter("e1", "p1")
                    + encounter(
                        "e2", "p1", start="2020-02-02T10:00:00Z", stop="2020-02-01T10:00:00Z"
                    )  # line 3
                    + encounter("e3", "ghost"),  # line 4: orphan encounter
                    "conditions.csv": CONDITIONS_HEADER
                    + "2020-01-01,,p1,e1,44054006,Diabetes\n"
                    + "2020-01-01,,p1,e9,44054006,Diabetes\n"  # line 3: encounter that does not exist
                    + "2020-01-01,,p3,e1,44054006,Diabetes\n",  # line 4: person quarantined -> orphan
                    "medications.csv": MEDICATIONS_HEADER
                    + "2020-01-01T10:00:00Z,,p1,pay1,e1,860975,Metformin,1,0,-2,3,,\n",  # line 2: negative quantity
                },
            )
        ],
    )
    assert quarantined(lake_dir) == [
        # the money of a quarantined prescription or visit goes with it (cost/*.sql)
        ("cost", 2, "NEGATIVE_QUANTITY", "DISPENSES"),
        ("cost", 3, "END_BEFORE_START", "STOP"),
        ("cost", 4, "ORPHAN_PERSON", "source_person_id"),
        ("event", 2, "NEGATIVE_QUANTITY", "DISPENSES"),
        ("event", 3, "MISSING_VISIT", "visit_key"),
        ("event", 4, "ORPHAN_PERSON", "source_person_id"),
        ("person_pii", 4, "ORPHAN_PERSON", "source_person_id"),
        ("person_source", 4, "BIRTH_AFTER_DEATH", "DEATHDATE"),
        ("visit", 3, "END_BEFORE_START", "STOP"),
        ("visit", 4, "ORPHAN_PERSON", "source_person_id"),
    ]
    assert {p["source_person_id"] for p in staged(lake_dir, "person_source")} == {"p1", "p2", "p4"}
    # an impossible birth date no longer quarantines the person (issue 18): staged, flagged, year kept
    (p2,) = [p for p in staged(lake_dir, "person_source") if p["source_person_id"] == "p2"]
    assert (p2["birth_date"], p2["birth_year"], p2["birth_date_flag"]) == (None, 1990, "INVALID_BIRTH_DATE")
    assert all(r.unaccounted == 0 for r in report.reconciliation)
    assert report.quarantine_reasons[("event", "MISSING_VISIT")] == 1


def test_duplicates_are_merged_or_quarantined(tmp_path, registry):
    lake_dir, report = stage(
        tmp_path,
        registry,
        [
            ("b1", {"patients.csv": PATIENTS_HEADER + patient("p1") + patient("p2")}),
            # a later full export: p1 unchanged, p2 died (a newer version), p3 twice with different content
            (
                "b2",
                {
                    "patients.csv": PATIENTS_HEADER
                    + patient("p1")
                    + patient("p2", death="2022-01-01")
                    + patient("p3")
                    + patient("p3", birth="1970-01-01")
                },
            ),
        ],
    )
    persons = {p["source_person_id"]: p for p in staged(lake_dir, "person_source")}
    assert sorted(persons) == ["p1", "p2", "p3"]
    assert str(persons["p2"]["death_date"]) == "2022-01-01"
    assert str(persons["p3"]["birth_date"]) == "1980-01-02"  # the first line of the batch wins
    merged = lake.read_table(lake.table_path(lake_dir, "staging", "_merged")).to_pylist()
    assert sorted(
        (m["_batch_id"], m["reason_code"]) for m in merged if m["staging_table"] == "person_source"
    ) == [("b1", "DUPLICATE_IDENTICAL"), ("b1", "SUPERSEDED")]
    assert ("person_source", 5, "DUPLICATE_ID", "record_key") in quarantined(lake_dir)
    assert all(r.unaccounted == 0 for r in report.reconciliation)


def test_staging_is_a_full_replace(tmp_path, registry):
    lake_dir, _ = stage(tmp_path, registry, [("b1", {"patients.csv": PATIENTS_HEADER + patient("p1")})])
    build_staging(lake_dir, registry)
    assert len(staged(lake_dir, "person_source")) == 1


def test_answers_that_are_identifiers_are_not_staged(tmp_path, registry):
    header = "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n"
    lake_dir, _ = stage(
        tmp_path,
        registry,
        [
            (
                "b1",
                {
                    "patients.csv": PATIENTS_HEADER + patient("p1"),
                    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
                    "observations.csv": header
                    + "2020-01-01T10:00:00Z,p1,e1,survey,56799-0,What address do you live at?,1 Main St,,text\n"
                    + "2020-01-01T10:00:00Z,p1,e1,survey,72166-2,Tobacco smoking status,Never smoker,,text\n",
                },
            )
        ],
    )
    answers = {e["code"]: e["value_as_string"] for e in staged(lake_dir, "event")}
    assert answers == {"56799-0": None, "72166-2": "Never smoker"}


def test_a_written_table_that_disagrees_with_the_accounting_fails(tmp_path, registry, monkeypatch):
    original = build._overwrite

    def lose_a_row(lake_dir, name, reader):  # a writer bug that drops one staged person
        lost = pa.RecordBatchReader.from_batches(reader.schema, iter([]))
        original(lake_dir, name, lost if name == "person_source" else reader)

    monkeypatch.setattr(build, "_overwrite", lose_a_row)
    with pytest.raises(ReconciliationError, match="staging/person_source: 0 rows written, 1 accounted"):
        stage(tmp_path, registry, [("b1", {"patients.csv": PATIENTS_HEADER + patient("p1")})])


def test_datetimes_keep_the_local_calendar_day():
    con = build.staging_connection()
    days = con.execute(
        "SELECT rwe_date('2020-03-01T23:58:16-04:00'), rwe_date('2020-03-01T00:30:00+09:00'), "
        "rwe_ts('2020-03-01T09:00:00Z'), rwe_date('20200301'), rwe_ts('2020-02-30')"
    ).fetchone()
    assert [str(d) for d in days] == ["2020-03-01", "2020-03-01", "2020-03-01 09:00:00", "2020-03-01", "None"]
    # a 40-minute visit across the autumn DST change: its wall clock runs back, its end stays after its start
    start, end = "2020-11-01T01:30:00-04:00", "2020-11-01T01:10:00-05:00"
    assert con.execute("SELECT rwe_ts_end(?, ?)::VARCHAR", [start, end]).fetchone() == (
        "2020-11-01 02:10:00",
    )
    assert con.execute(
        "SELECT rwe_ts_end(?, ?)::VARCHAR", [start, "2020-11-01T03:00:00-05:00"]
    ).fetchone() == ("2020-11-01 03:00:00",)
