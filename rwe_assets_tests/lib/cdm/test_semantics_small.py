"""Smaller clinical-semantics rules of the CDM build (issue 15, item 8), on one hand-built CDM from a
Synthea CSV source and a FHIR R4 source: provider gender from both spellings, ZIP+4 in LOCATION.zip,
note_class_concept_id through the vocabulary, and no scratch tables left in the published file."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry, parse_registry
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_build import ENCOUNTERS_HEADER, PATIENTS_HEADER, encounter

ORGANIZATIONS_HEADER = "Id,NAME,ADDRESS,CITY,STATE,ZIP,LAT,LON,PHONE,REVENUE,UTILIZATION\n"
PROVIDERS_HEADER = "Id,ORGANIZATION,NAME,GENDER,SPECIALITY,ADDRESS,CITY,STATE,ZIP,LAT,LON,UTILIZATION\n"
CSV_BATCH = {
    "patients.csv": PATIENTS_HEADER
    + "p1,1980-01-02,,999-11-2222,,,,Ann,Lee,,,,white,nonhispanic,F,,1 Main St,Boston,MA,Suffolk County,"
    "02108-4623,,,0,0\n"
    + "p2,1975-06-07,,999-11-3333,,,,Bob,Ray,,,,white,nonhispanic,M,,2 Main St,Boston,MA,Suffolk County,"
    "02110,,,0,0\n",
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1") + encounter("e2", "p2"),
    "organizations.csv": ORGANIZATIONS_HEADER
    + "org1,Clinic,1 Way,LOWELL,MA,1850,,,,0,0\n"  # a number column dropped the leading zero
    + "org2,Lab,2 Way,SALEM,MA,01970-12345,,,,0,0\n",  # too long and not a ZIP+4
    "providers.csv": PROVIDERS_HEADER
    + "prov1,org1,Dr A,M,GENERAL PRACTICE,,Boston,MA,02110,,,1\n"
    + "prov2,org1,Dr B,F,GENERAL PRACTICE,,Boston,MA,02110,,,1\n"
    + "prov3,org1,Dr C,f,GENERAL PRACTICE,,Boston,MA,02110,,,1\n",  # case does not matter
}


def practitioner(pid: str, gender: str) -> dict:
    return {"resourceType": "Practitioner", "id": pid, "name": [{"family": "Doe"}], "gender": gender}


def loinc_type(code: str, display: str) -> dict:
    return {"coding": [{"system": fhir.LOINC, "code": code, "display": display}]}


FHIR_BATCH = {
    "Patient.000.ndjson": fhir.ndjson(
        fhir.patient("f1", birthDate="1950-05-05", name=[{"family": "Kim77", "given": ["Joy88"]}])
    ),
    "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("fe1", subject="Patient/f1")),
    "Practitioner.000.ndjson": fhir.ndjson(
        practitioner("dr1", "male"),
        practitioner("dr2", "female"),
        practitioner("dr3", "other"),
        practitioner("dr4", "unknown"),
    ),
    "DocumentReference.000.ndjson": fhir.ndjson(
        fhir.document("d1", "A history.", enc="Encounter/fe1", subject={"reference": "Patient/f1"}),
        fhir.document(
            "d2",
            "Progress.",
            enc="Encounter/fe1",
            subject={"reference": "Patient/f1"},
            type=loinc_type("11506-3", "Progress note"),
        ),
        fhir.document(
            "d3",
            "A plan.",
            enc="Encounter/fe1",
            subject={"reference": "Patient/f1"},
            type=loinc_type("51847-2", "Evaluation + Plan note"),
        ),
    ),
}

# The bundled vocabulary has no LOINC document-type concepts (vocab/README.md: it holds what the
# samples' events need). The test vocabulary adds three as site-local concepts (ids above
# 2,000,000,000, OMOP's range for local concepts), shaped as Athena ships such codes:
#   34117-2  standard itself (Athena: a standard LOINC 'Clinical Observation' that maps to itself)
#   11506-3  non-standard here, with a "Maps to" a standard document-kind concept
#   51847-2  absent: note_class_concept_id 0, the code kept in note_source_value
HISTORY_AND_PHYSICAL = 2_000_000_101
PROGRESS_NOTE_SOURCE = 2_000_000_102
PROGRESS_NOTE_KIND = 2_000_000_103
TEST_CONCEPTS = (
    (
        HISTORY_AND_PHYSICAL,
        "History and physical note",
        "Observation",
        "LOINC",
        "Clinical Observation",
        "S",
        "34117-2",
    ),
    (PROGRESS_NOTE_SOURCE, "Progress note", "Observation", "LOINC", "Clinical Observation", "", "11506-3"),
    (PROGRESS_NOTE_KIND, "Progress note (kind)", "Meas Value", "LOINC", "Doc Kind", "S", "TEST-DOC-KIND"),
)
TEST_MAPS_TO = ((PROGRESS_NOTE_SOURCE, PROGRESS_NOTE_KIND), (HISTORY_AND_PHYSICAL, HISTORY_AND_PHYSICAL))


def vocabulary_with_note_classes(folder):
    """The bundled vocabulary plus TEST_CONCEPTS and their "Maps to" rows, in Athena's layout."""
    shutil.copytree(REPO_DIR / "vocab", folder)
    with (folder / "CONCEPT.csv").open("a", encoding="utf-8") as concepts:
        for row in TEST_CONCEPTS:
            concepts.write("\t".join(map(str, row)) + "\t19700101\t20991231\t\n")
    with (folder / "CONCEPT_RELATIONSHIP.csv").open("a", encoding="utf-8") as relationships:
        for source, target in TEST_MAPS_TO:
            relationships.write(f"{source}\t{target}\tMaps to\t19700101\t20991231\t\n")
    return folder


def two_source_registry():
    """The project's Synthea CSV and FHIR R4 sources (their entity lists), as 'csv' and 'fhir'."""
    project = load_registry()
    sources = []
    for name, project_name, fmt, profile in (
        ("csv", "ehr_site_a", "csv", "synthea_csv"),
        ("fhir", "ehr_site_b", "ndjson", "fhir_r4"),
    ):
        entities = project.get(project_name).entities
        sources.append(
            {
                "name": name,
                "kind": "ehr",
                "format": fmt,
                "extract": "snapshot" if fmt == "csv" else "incremental",
                "owner": "test",
                "staging_profile": profile,
                "entities": [
                    {"name": e.name, "required_columns": list(e.required_columns)} for e in entities
                ],
            }
        )
    return parse_registry({"sources": sources})


@pytest.fixture(scope="module")
def cdm(tmp_path_factory):
    tmp_path, registry = tmp_path_factory.mktemp("semantics"), two_source_registry()
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    for source, files in (("csv", CSV_BATCH), ("fhir", FHIR_BATCH)):
        land(landing, source, "b1", files)
        ingest_batch(lake_dir, landing, registry.get(source), "b1")
    build_staging(lake_dir, registry)
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, "test-key")
    vocab = vocabulary_with_note_classes(tmp_path / "vocab")
    report = build_cdm(lake_dir, vocab, tmp_path / "warehouse")
    with duckdb.connect(str(report.path), read_only=True) as db:
        yield db


def test_provider_gender_maps_synthea_and_fhir_spellings(cdm):
    providers = cdm.execute(
        "SELECT provider_source_value, gender_concept_id, gender_source_value FROM cdm.provider ORDER BY 1"
    ).fetchall()
    assert providers == [
        ("dr1", c.MALE, "male"),  # FHIR Practitioner.gender
        ("dr2", c.FEMALE, "female"),
        ("dr3", 0, "other"),  # no OMOP gender concept: 0, the source value kept
        ("dr4", 0, "unknown"),
        ("prov1", c.MALE, "M"),  # Synthea providers.csv GENDER
        ("prov2", c.FEMALE, "F"),
        ("prov3", c.FEMALE, "f"),
    ]


def test_person_and_provider_share_one_gender_mapping():
    """One definition: person.sql uses the mapping provider.sql defines, no copy of the spellings."""
    sql_dir = REPO_DIR / "rwe_assets" / "lib" / "sql" / "cdm"
    person, provider = (sql_dir / "person.sql").read_text(), (sql_dir / "provider.sql").read_text()
    assert "gender_map" in person and "gender_map" in provider
    assert "'female'" not in person.lower() and "$female" not in person


def test_zip_plus_4_is_stored_as_nine_digits(cdm):
    locations = cdm.execute("SELECT city, zip, location_source_value FROM cdm.location ORDER BY city, zip")
    assert locations.fetchall() == [
        ("Boston", "021084623", "loc|MA|Boston|02108-4623|Suffolk County"),  # source text kept here
        ("Boston", "02110", "loc|MA|Boston|02110|Suffolk County"),
        ("LOWELL", "01850", "loc|MA|LOWELL|1850|"),
        ("SALEM", None, "loc|MA|SALEM|01970-12345|"),
    ]
    person_zip = cdm.execute(
        "SELECT l.zip FROM cdm.person p JOIN cdm.location l USING (location_id) WHERE p.year_of_birth = 1980"
    ).fetchall()
    assert person_zip == [("021084623",)]


def test_note_class_comes_from_the_loinc_document_code_through_the_vocabulary(cdm):
    notes = cdm.execute(
        "SELECT note_source_value, note_class_concept_id FROM cdm.note ORDER BY note_source_value"
    ).fetchall()
    assert notes == [
        ("11506-3", PROGRESS_NOTE_KIND),  # source concept -> "Maps to" -> standard
        ("34117-2", HISTORY_AND_PHYSICAL),  # a standard concept itself
        ("51847-2", 0),  # not in the vocabulary
    ]


def test_the_built_file_holds_only_the_cdm_and_results_schemas(cdm):
    tables = cdm.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
    assert tables
    assert [t for t in tables if t[0] not in ("cdm", "results")] == []
    assert cdm.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)
