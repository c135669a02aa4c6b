"""The CDM build on small hand-built Synthea batches: mapping, routing, unmapped codes, units,
visits, eras, ids, and conformance with the OMOP v5.4 specification."""

from __future__ import annotations

import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.lib import lake
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.cdm_spec import cdm_spec, expected_columns
from rwe_assets.lib.linkage.crosswalk import build_crosswalk
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    MEDICATIONS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

OBSERVATIONS_HEADER = "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n"
ALLERGIES_HEADER = (
    "START,STOP,PATIENT,ENCOUNTER,CODE,SYSTEM,DESCRIPTION,TYPE,CATEGORY,REACTION1,DESCRIPTION1,SEVERITY1,"
    "REACTION2,DESCRIPTION2,SEVERITY2\n"
)
BATCH = {
    "patients.csv": "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,"
    "ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE\n"
    + patient("p1", birth="1980-01-02", gender="F")
    + patient("p2", birth="1975-06-07", gender="M", first="Bob")
    + patient("p3", birth="1990-03-04", gender="X", first="Cy"),  # a sex code no mapping knows
    "encounters.csv": ENCOUNTERS_HEADER
    + encounter("e1", "p1")
    + encounter("e2", "p2", start="2021-03-01T08:00:00Z", stop="2021-03-01T09:00:00Z", klass="emergency")
    + encounter("e3", "p2", start="2021-03-01T12:00:00Z", stop="2021-03-04T12:00:00Z", klass="inpatient")
    + encounter("e4", "p3"),
    "conditions.csv": CONDITIONS_HEADER
    + "2020-01-01,,p1,e1,44054006,Diabetes mellitus type 2\n"
    + "2020-01-01,,p1,e1,160903007,Full-time employment (finding)\n"
    + "2021-03-01,,p2,e3,ZZZ999,A local code no vocabulary knows\n",
    "observations.csv": OBSERVATIONS_HEADER
    + "2020-01-01T10:00:00Z,p1,e1,vital-signs,8302-2,Body Height,170.5,cm,numeric\n",
    "medications.csv": MEDICATIONS_HEADER
    + "2020-01-01T10:00:00Z,2020-01-11T10:00:00Z,p1,pay1,e1,313782,Acetaminophen 325 MG Oral Tablet,1,0,1,1,,\n"
    + "2020-01-25T10:00:00Z,2020-02-04T10:00:00Z,p1,pay1,e1,313782,Acetaminophen 325 MG Oral Tablet,1,0,1,1,,\n",
    "allergies.csv": ALLERGIES_HEADER
    + "2020-01-01,,p1,e1,E11.9,ICD10CM,Diabetes (ICD-10-CM),allergy,food,,,,,,\n",
}


@pytest.fixture(scope="module")
def cdm(tmp_path_factory):
    """One small CDM built once for the module's tests (they only read it)."""
    tmp_path, registry = tmp_path_factory.mktemp("cdm"), synthea_registry()
    lake_dir, landing, warehouse = tmp_path / "lake", tmp_path / "landing", tmp_path / "warehouse"
    land(landing, "site", "b1", BATCH)
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    build_staging(lake_dir, registry)
    con = staging_connection()
    con.register(
        "person_pii", lake.open_table(lake.table_path(lake_dir, "staging", "person_pii")).to_pyarrow_dataset()
    )
    build_crosswalk(con, lake_dir, "test-key")
    report = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse)
    with duckdb.connect(str(report.path), read_only=True) as db:
        yield db, report, (lake_dir, warehouse)


def rows(db, sql, params=None):
    return db.execute(sql, params).fetchall()


def test_persons_carry_mapped_demographics_and_no_identifiers(cdm):
    db, _, _ = cdm
    persons = rows(
        db,
        "SELECT gender_concept_id, year_of_birth, month_of_birth, race_concept_id, ethnicity_concept_id, "
        "person_source_value, gender_source_value FROM cdm.person ORDER BY year_of_birth",
    )
    assert persons == [
        (c.MALE, 1975, 6, c.WHITE, c.NOT_HISPANIC_OR_LATINO, None, "M"),
        (c.FEMALE, 1980, 1, c.WHITE, c.NOT_HISPANIC_OR_LATINO, None, "F"),
        (0, 1990, 3, c.WHITE, c.NOT_HISPANIC_OR_LATINO, None, "X"),  # unknown sex: 0, source value kept
    ]
    assert rows(db, "SELECT city, state, zip, county FROM cdm.location") == [
        ("Boston", "MA", "02110", "Suffolk County")
    ]


def test_codes_map_to_standard_concepts_and_domains_route_rows(cdm):
    db, _, _ = cdm
    conditions = rows(
        db,
        "SELECT condition_concept_id, condition_source_value, condition_source_concept_id > 0 "
        "FROM cdm.condition_occurrence ORDER BY condition_source_value",
    )
    # SNOMED 44054006 -> 201826; a code nobody knows stays, as concept 0
    assert conditions == [(201826, "44054006", True), (0, "ZZZ999", False)]
    # a SNOMED finding staged as a condition maps to an Observation-domain concept: OBSERVATION. An
    # allergy is an OBSERVATION whatever its substance's domain: the allergy row whose code (ICD-10-CM
    # E11.9, through SOURCE_TO_CONCEPT_MAP) maps to a condition stays there, as an allergy (not a drug,
    # category food: 'Allergic disposition') with the substance's concept as its value
    assert rows(
        db,
        "SELECT observation_concept_id, observation_source_value, value_as_concept_id, value_as_string "
        "FROM cdm.observation ORDER BY observation_source_value",
    ) == [(4053118, "160903007", None, None), (c.ALLERGIC_DISPOSITION, "E11.9", 201826, "food")]
    assert rows(
        db,
        "SELECT measurement_concept_id, value_as_number, unit_concept_id, unit_source_value "
        "FROM cdm.measurement",
    ) == [(3036277, 170.5, 8582, "cm")]


def test_unmapped_codes_are_reported(cdm):
    db, report, _ = cdm
    assert report.unmapped_rows == 1
    assert rows(
        db, "SELECT vocabulary_id, code, cdm_table, rows, persons, rank FROM results.unmapped_codes"
    ) == [("SNOMED", "ZZZ999", "condition_occurrence", 1, 1, 1)]


def test_every_event_has_a_visit_and_er_then_admission_is_one_visit(cdm):
    db, _, _ = cdm
    for table in ("condition_occurrence", "drug_exposure", "measurement", "observation"):
        assert rows(db, f"SELECT count(*) FROM cdm.{table} WHERE visit_occurrence_id IS NULL") == [(0,)]
    visits = rows(
        db,
        "SELECT visit_concept_id, visit_start_date, visit_end_date FROM cdm.visit_occurrence v "
        "JOIN cdm.person p USING (person_id) WHERE p.year_of_birth = 1975",
    )
    assert [(v[0], str(v[1]), str(v[2])) for v in visits] == [
        (c.EMERGENCY_ROOM_AND_INPATIENT_VISIT, "2021-03-01", "2021-03-04")
    ]
    assert rows(db, "SELECT count(*) FROM cdm.visit_detail") == [(4,)]


def test_drug_era_rolls_exposures_up_to_the_ingredient(cdm):
    db, _, _ = cdm
    eras = rows(
        db,
        "SELECT drug_concept_id, drug_era_start_date, drug_era_end_date, drug_exposure_count FROM cdm.drug_era",
    )
    assert [(e[0], str(e[1]), str(e[2]), e[3]) for e in eras] == [(1125315, "2020-01-01", "2020-02-04", 2)]


def test_tables_match_the_omop_specification_and_concepts_exist(cdm):
    db, _, _ = cdm
    for table in cdm_spec().tables:
        columns = rows(
            db,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'cdm' AND table_name = ? ORDER BY ordinal_position",
            [table.name],
        )
        assert columns == expected_columns(table), table.name
    for table in cdm_spec().tables:
        if table.is_vocabulary:
            continue
        for field in table.fields:
            if field.name.endswith("_concept_id"):
                missing = rows(
                    db,
                    f"SELECT count(*) FROM cdm.{table.name} t WHERE t.{field.name} IS NOT NULL "
                    f"AND t.{field.name} NOT IN (SELECT concept_id FROM cdm.concept)",
                )
                assert missing == [(0,)], f"{table.name}.{field.name}"


def test_ids_are_stable_when_the_cdm_is_rebuilt(cdm):
    db, _, (lake_dir, warehouse) = cdm
    before = rows(
        db, "SELECT condition_occurrence_id, condition_source_value FROM cdm.condition_occurrence ORDER BY 1"
    )
    rebuilt = build_cdm(lake_dir, REPO_DIR / "vocab", warehouse / "again")
    with duckdb.connect(str(rebuilt.path), read_only=True) as again:
        assert (
            rows(
                again,
                "SELECT condition_occurrence_id, condition_source_value FROM cdm.condition_occurrence ORDER BY 1",
            )
            == before
        )
