"""Allergies, coded values and units in the CDM (issue 15, items 1, 5 and 6), on small CDMs built the
whole way from hand-written FHIR R4 resources and Synthea CSV rows:

* an allergy or intolerance is an OBSERVATION of the kind of allergy, its substance's standard concept
  as value_as_concept_id, whatever the substance's domain (a drug does not become a drug exposure);
* a coded result (valueCodeableConcept, also in a component) reaches value_as_concept_id, 0 when its
  code maps to nothing;
* units map through UCUM, common non-UCUM spellings included; unmapped units and value codes are in
  results.unmapped_codes with their kind.
"""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from rwe_assets import constants as c
from rwe_assets.lib.cdm.build import TEMPERATURE_UNIT_ALIASES, UNIT_ALIASES, build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_build import (
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)
from rwe_assets_tests.lib.staging.test_lifecycle import stage

# Standard concepts of the bundled vocabulary the rows below should carry.
ASPIRIN, PENICILLIN_V, PEANUT, LATEX, MOLD = 1112807, 1729720, 42538933, 4008070, 4224654
UNEMPLOYED, FULL_TIME_EMPLOYMENT, BMI_30_PLUS = 4251171, 4053118, 4060985
CELSIUS, FAHRENHEIT, MM_HG, PER_MINUTE = 586323, 9289, 8876, 8541
LOCAL = fhir.LOCAL_SYSTEM  # a code system no vocabulary knows: its URL stays the vocabulary_id
MIDDAY = "2020-03-01T12:00:00-05:00"  # dates only are asserted: the time of an offset timestamp may change


def allergy(aid: str, code: dict, category: str, kind: str = "allergy") -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "type": kind,
        "category": [category],
        "code": code,
        "patient": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "recordedDate": MIDDAY,
    }


def quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit}  # a unit without a UCUM code: staged as written


def measured(oid: str, loinc: str, display: str, value: float, unit: str) -> dict:
    return fhir.observation(
        oid,
        code=fhir.cc(fhir.LOINC, loinc, display),
        valueQuantity=quantity(value, unit),
        effectiveDateTime=MIDDAY,
    )


def coded(oid: str, loinc: str, display: str, value: dict, **fields) -> dict:
    return fhir.observation(
        oid,
        code=fhir.cc(fhir.LOINC, loinc, display),
        valueCodeableConcept=value,
        effectiveDateTime=MIDDAY,
        **fields,
    )


FHIR_BATCH = {
    "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
    "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
    "AllergyIntolerance.000.ndjson": fhir.ndjson(
        allergy("aspirin", fhir.cc(fhir.RXNORM, "1191", "Aspirin"), "medication"),
        allergy("penicillin", fhir.cc(fhir.RXNORM, "7984", "Penicillin V"), "medication", kind="intolerance"),
        allergy("peanut", fhir.cc(fhir.SNOMED, "762952008", "Peanut (substance)"), "food"),
        allergy(
            "latex", fhir.cc(fhir.SNOMED, "111088007", "Latex (substance)"), "environment", kind="intolerance"
        ),
        allergy("local", fhir.cc(LOCAL, "SULFA-7", "Sulfa drugs (local)"), "medication"),
    ),
    "Observation.000.ndjson": fhir.ndjson(
        # coded values
        coded("employment", "67875-5", "Employment status", fhir.cc(fhir.SNOMED, "73438004", "Unemployed")),
        fhir.observation(
            "panel",
            code=fhir.cc(LOCAL, "SDOH-PANEL", "Social needs panel"),
            effectiveDateTime=MIDDAY,
            component=[
                {
                    "code": fhir.cc(fhir.LOINC, "67875-5", "Employment status"),
                    "valueCodeableConcept": fhir.cc(fhir.SNOMED, "160903007", "Full-time employment"),
                }
            ],
        ),
        coded("retired", "67875-5", "Employment status", fhir.cc(LOCAL, "EMP-9", "Retired (local code)")),
        coded("text-only", "67875-5", "Employment status", {"text": "Works nights"}),
        coded("bmi", "39156-5", "BMI", fhir.cc(fhir.SNOMED, "162864005", "Body mass index 30+ - obesity")),
        # units
        measured("temp-c", "8310-5", "Body temperature", 37.2, "C"),
        measured("temp-degf", "8310-5", "Body temperature", 99.1, "degF"),
        fhir.observation(
            "bp",
            code=fhir.cc(fhir.LOINC, "85354-9", "Blood pressure panel"),
            effectiveDateTime=MIDDAY,
            component=[
                {"code": fhir.cc(fhir.LOINC, "8480-6", "Systolic"), "valueQuantity": quantity(120, "mmHg")},
                {"code": fhir.cc(fhir.LOINC, "8462-4", "Diastolic"), "valueQuantity": quantity(80, "mmHg")},
            ],
        ),
        measured("pulse", "8867-4", "Heart rate", 72, "beats/minute"),
        measured("breaths", "9279-1", "Respiratory rate", 16, "/min"),
        measured("weight-c", "29463-7", "Body weight", 70, "C"),  # C is no unit of a weight: ambiguous
        measured("height-furlongs", "8302-2", "Body height", 0.008, "furlongs"),
    ),
}


@pytest.fixture(scope="module")
def fhir_cdm(tmp_path_factory):
    path = build(tmp_path_factory.mktemp("fhir"), fhir.fhir_registry(), "site", [FHIR_BATCH])
    with duckdb.connect(str(path), read_only=True) as db:
        yield db


def rows(db, sql: str, params=None) -> list[tuple]:
    return db.execute(sql, params).fetchall()


def test_an_allergy_is_an_observation_of_its_kind_with_the_substance_as_value(fhir_cdm):
    # aspirin and penicillin are drugs: no drug exposure may say the patient took them
    assert rows(fhir_cdm, "SELECT count(*) FROM cdm.drug_exposure") == [(0,)]
    allergies = rows(
        fhir_cdm,
        "SELECT observation_source_value, observation_concept_id, value_as_concept_id, "
        "observation_source_concept_id, value_source_value, value_as_string, observation_date::VARCHAR "
        "FROM cdm.observation WHERE observation_source_value IN ('1191', '7984', '762952008', '111088007', "
        "'SULFA-7') ORDER BY observation_source_value",
    )
    assert allergies == [
        ("111088007", c.INTOLERANCE_TO_SUBSTANCE, LATEX, LATEX, "111088007", "environment", "2020-03-01"),
        ("1191", c.ALLERGY_TO_DRUG, ASPIRIN, ASPIRIN, "1191", "medication", "2020-03-01"),
        ("762952008", c.ALLERGIC_DISPOSITION, PEANUT, PEANUT, "762952008", "food", "2020-03-01"),
        ("7984", c.INTOLERANCE_TO_DRUG, PENICILLIN_V, PENICILLIN_V, "7984", "medication", "2020-03-01"),
        # a substance no vocabulary knows: still an allergy (its category says a drug), value 0
        ("SULFA-7", c.ALLERGY_TO_DRUG, 0, 0, "SULFA-7", "medication", "2020-03-01"),
    ]


def test_an_unmapped_allergy_substance_is_counted_as_unmapped(fhir_cdm):
    assert rows(
        fhir_cdm,
        "SELECT code_kind, cdm_table, rows, persons FROM results.unmapped_codes WHERE code = 'SULFA-7'",
    ) == [("event code", "observation", 1, 1)]
    summary = dict(
        rows(
            fhir_cdm,
            "SELECT mapping_rule, sum(rows)::INTEGER FROM results.mapping_summary "
            "WHERE cdm_table = 'observation' GROUP BY ALL",
        )
    )
    # the five allergies and four coded observations: mapped by their own code ("Maps to"), the
    # allergies too, whose row concept is the kind of allergy; SULFA-7 maps to nothing
    assert summary == {"maps_to": 8, "unmapped": 1}


def test_coded_values_reach_value_as_concept_id(fhir_cdm):
    observations = rows(
        fhir_cdm,
        "SELECT observation_concept_id, value_as_concept_id, value_as_string, value_source_value "
        "FROM cdm.observation WHERE observation_source_value = '67875-5' ORDER BY value_as_string",
    )
    assert observations == [
        (40770471, FULL_TIME_EMPLOYMENT, "Full-time employment", "160903007"),  # a component's value
        (40770471, 0, "Retired (local code)", "EMP-9"),  # a value code no vocabulary knows: 0, code kept
        (40770471, UNEMPLOYED, "Unemployed", "73438004"),
        (40770471, None, "Works nights", None),  # text only: no coded value
    ]
    assert rows(
        fhir_cdm,
        "SELECT value_as_concept_id, value_source_value FROM cdm.measurement WHERE measurement_source_value = '39156-5'",
    ) == [(BMI_30_PLUS, "162864005")]


def test_units_map_through_ucum_with_common_spellings(fhir_cdm):
    units = rows(
        fhir_cdm,
        "SELECT measurement_source_value, unit_source_value, unit_concept_id FROM cdm.measurement "
        "WHERE unit_source_value IS NOT NULL ORDER BY measurement_source_value, unit_source_value",
    )
    assert units == [
        ("29463-7", "C", 0),  # C for a weight: neither coulomb nor Celsius, reported
        ("8302-2", "furlongs", 0),
        ("8310-5", "C", CELSIUS),  # a temperature in C is in degrees Celsius, not coulombs
        ("8310-5", "degF", FAHRENHEIT),
        ("8462-4", "mmHg", MM_HG),
        ("8480-6", "mmHg", MM_HG),
        ("8867-4", "beats/minute", PER_MINUTE),
        ("9279-1", "/min", PER_MINUTE),
    ]


def test_unmapped_units_and_value_codes_are_reported_with_their_kind(fhir_cdm):
    reported = rows(
        fhir_cdm,
        "SELECT code_kind, vocabulary_id, code, description, cdm_table, rows, persons FROM results.unmapped_codes "
        "WHERE code_kind <> 'event code' ORDER BY code_kind, code",
    )
    assert reported == [
        ("unit", "UCUM", "C", None, "measurement", 1, 1),
        ("unit", "UCUM", "furlongs", None, "measurement", 1, 1),
        ("value", LOCAL, "EMP-9", "Retired (local code)", "observation", 1, 1),
    ]
    ranks = rows(fhir_cdm, "SELECT rank FROM results.unmapped_codes ORDER BY rank")
    assert ranks == [(1,)] * len(ranks)  # one row and one person each: all tie


def test_every_unit_alias_names_a_standard_ucum_concept():
    concept = pl.read_csv(
        REPO_DIR / "vocab" / "CONCEPT.csv", separator="\t", infer_schema_length=0, quote_char=None
    )
    ucum = dict(
        concept.filter((pl.col("vocabulary_id") == "UCUM") & (pl.col("standard_concept") == "S"))
        .select("concept_code", "concept_id")
        .iter_rows()
    )
    for spelling, code in {**UNIT_ALIASES, **TEMPERATURE_UNIT_ALIASES}.items():
        assert code in ucum, (spelling, code)
    assert ucum[UNIT_ALIASES["kU/L"]] == "8810"  # kilounit per liter
    assert ucum[UNIT_ALIASES["/a"]] == "44777560"  # per year
    assert ucum[TEMPERATURE_UNIT_ALIASES["C"]] == str(CELSIUS)


# --- Synthea CSV -------------------------------------------------------------------------------------

ALLERGIES_HEADER = (
    "START,STOP,PATIENT,ENCOUNTER,CODE,SYSTEM,DESCRIPTION,TYPE,CATEGORY,REACTION1,DESCRIPTION1,SEVERITY1,"
    "REACTION2,DESCRIPTION2,SEVERITY2\n"
)
OBSERVATIONS_HEADER = "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n"
CSV_BATCH = {
    "patients.csv": PATIENTS_HEADER + patient("p1"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
    "allergies.csv": ALLERGIES_HEADER
    + "2020-01-01,,p1,e1,1191,RxNorm,Aspirin,allergy,medication,,,,,,\n"
    + "2020-01-01,,p1,e1,7984,RxNorm,Penicillin V,intolerance,medication,,,,,,\n"
    + "2020-01-01,,p1,e1,84489001,SNOMED-CT,Mold (organism),allergy,environment,,,,,,\n",
    "observations.csv": OBSERVATIONS_HEADER
    + "2020-01-01T10:00:00Z,p1,e1,survey,72166-2,Tobacco smoking status,Never smoked tobacco (finding),,text\n"
    + "2020-01-01T10:00:00Z,p1,e1,vital-signs,8480-6,Systolic Blood Pressure,120,mmHg,numeric\n",
}


def test_synthea_csv_allergies_and_text_values(tmp_path):
    path = build(tmp_path, synthea_registry(), "site", [CSV_BATCH])
    with duckdb.connect(str(path), read_only=True) as db:
        assert rows(db, "SELECT count(*) FROM cdm.drug_exposure") == [(0,)]
        assert rows(
            db,
            "SELECT observation_source_value, observation_concept_id, value_as_concept_id, value_as_string "
            "FROM cdm.observation ORDER BY observation_source_value",
        ) == [
            ("1191", c.ALLERGY_TO_DRUG, ASPIRIN, "medication"),
            # a TYPE 'text' value is a display text, not a code: value_as_string, no value concept
            ("72166-2", 43054909, None, "Never smoked tobacco (finding)"),
            ("7984", c.INTOLERANCE_TO_DRUG, PENICILLIN_V, "medication"),
            ("84489001", c.ALLERGIC_DISPOSITION, MOLD, "environment"),
        ]
        assert rows(db, "SELECT unit_source_value, unit_concept_id FROM cdm.measurement") == [("mmHg", MM_HG)]


# --- an allergy code that names the allergy itself ---------------------------------------------------

# Site-local test concepts (OMOP keeps ids above 2,000,000,000 for local concepts): a SNOMED allergy
# finding that the vocabulary decomposes, as OHDSI's SNOMED mapping does ("Maps to" the kind of allergy,
# "Maps to value" the substance), and one that is a standard concept of its own.
PRECOORDINATED, STANDARD_FINDING = 2000000001, 2000000002
TEST_CONCEPTS = (
    f"{PRECOORDINATED}\tAllergy to penicillin (test row)\tObservation\tSNOMED\tClinical Finding\t\t91936005\t"
    "19700101\t20991231\t\n"
    f"{STANDARD_FINDING}\tNo known allergy (test row)\tObservation\tSNOMED\tClinical Finding\tS\t716186003\t"
    "19700101\t20991231\t\n"
)
TEST_RELATIONSHIPS = (
    f"{PRECOORDINATED}\t{c.ALLERGY_TO_DRUG}\tMaps to\t19700101\t20991231\t\n"
    f"{PRECOORDINATED}\t{PENICILLIN_V}\tMaps to value\t19700101\t20991231\t\n"
)


def test_an_allergy_finding_code_is_the_observation_concept(tmp_path):
    vocab = tmp_path / "vocab"
    shutil.copytree(REPO_DIR / "vocab", vocab)
    for name, extra in (("CONCEPT.csv", TEST_CONCEPTS), ("CONCEPT_RELATIONSHIP.csv", TEST_RELATIONSHIPS)):
        with (vocab / name).open("a", encoding="utf-8") as fh:
            fh.write(extra)
    batch = dict(FHIR_BATCH)
    batch["AllergyIntolerance.000.ndjson"] = fhir.ndjson(
        allergy("pen", fhir.cc(fhir.SNOMED, "91936005", "Allergy to penicillin"), "medication"),
        allergy("nka", fhir.cc(fhir.SNOMED, "716186003", "No known allergy"), "medication"),
    )
    del batch["Observation.000.ndjson"]
    lake_dir, _ = stage(tmp_path, fhir.fhir_registry(), "site", [batch])
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, "test-key")
    path = build_cdm(lake_dir, vocab, tmp_path / "warehouse").path
    with duckdb.connect(str(path), read_only=True) as db:
        assert rows(
            db,
            "SELECT observation_source_value, observation_concept_id, value_as_concept_id, "
            "observation_source_concept_id FROM cdm.observation ORDER BY observation_source_value",
        ) == [
            ("716186003", STANDARD_FINDING, None, STANDARD_FINDING),
            ("91936005", c.ALLERGY_TO_DRUG, PENICILLIN_V, PRECOORDINATED),
        ]


def test_every_allergy_concept_is_a_standard_observation_concept_of_the_bundled_vocabulary():
    concept = pl.read_csv(
        REPO_DIR / "vocab" / "CONCEPT.csv", separator="\t", infer_schema_length=0, quote_char=None
    )
    for concept_id in (
        c.ALLERGY_TO_DRUG,
        c.ALLERGIC_DISPOSITION,
        c.INTOLERANCE_TO_DRUG,
        c.INTOLERANCE_TO_SUBSTANCE,
    ):
        row = concept.filter(pl.col("concept_id") == str(concept_id)).row(0, named=True)
        assert (row["domain_id"], row["standard_concept"], row["invalid_reason"]) == (
            "Observation",
            "S",
            None,
        )
