"""A three-person CDM built by hand (the spec's DDL, a few rows), for characterization tests.

P1 male, born 1980: one observation period 2010-01-01..2012-12-31; conditions 201826 on 2010-03-15
and 2011-05-01, 320128 on 2012-02-10; a drug on 2010-03-20; an outpatient visit on 2010-03-15.
P2 female, born 1990: periods 2011-06-15..2011-12-31 and 2012-03-01..2013-01-31; condition 201826 on
2011-07-01 and on 2014-01-01 (outside every period); a measurement of 120 (90-140) on 2011-07-01; died
2013-01-31.
P3 female, born 1990: period 2012-01-01..2012-01-31; condition 320128 on 2012-01-10.
"""

from __future__ import annotations

import duckdb

from rwe_assets.lib.cdm_spec import cdm_ddl

MALE, FEMALE, WHITE, NOT_HISPANIC = 8507, 8532, 8527, 38003564
T2DM, HYPERTENSION, METFORMIN, OUTPATIENT, SYSTOLIC, MMHG = 201826, 320128, 1503297, 9202, 3004249, 8876
EHR = 32817


def build_fixture_cdm(con: duckdb.DuckDBPyConnection, schema: str = "cdm") -> None:
    for statement in cdm_ddl(schema):
        con.execute(statement)
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    s = schema
    con.execute(
        f"INSERT INTO {s}.person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id) "
        "VALUES (1, ?, 1980, ?, ?), (2, ?, 1990, ?, ?), (3, ?, 1990, ?, ?)",
        [MALE, WHITE, NOT_HISPANIC, FEMALE, WHITE, NOT_HISPANIC, FEMALE, WHITE, NOT_HISPANIC],
    )
    con.execute(
        f"INSERT INTO {s}.observation_period VALUES "
        "(1, 1, DATE '2010-01-01', DATE '2012-12-31', ?), (2, 2, DATE '2011-06-15', DATE '2011-12-31', ?), "
        "(3, 2, DATE '2012-03-01', DATE '2013-01-31', ?), (4, 3, DATE '2012-01-01', DATE '2012-01-31', ?)",
        [EHR] * 4,
    )
    con.execute(
        f"INSERT INTO {s}.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_type_concept_id, condition_source_concept_id) VALUES "
        "(1, 1, ?, DATE '2010-03-15', ?, 0), (2, 1, ?, DATE '2011-05-01', ?, 0), "
        "(3, 1, ?, DATE '2012-02-10', ?, 0), (4, 2, ?, DATE '2011-07-01', ?, 0), "
        "(5, 2, ?, DATE '2014-01-01', ?, 0), (6, 3, ?, DATE '2012-01-10', ?, 0)",
        [T2DM, EHR, T2DM, EHR, HYPERTENSION, EHR, T2DM, EHR, T2DM, EHR, HYPERTENSION, EHR],
    )
    con.execute(
        f"INSERT INTO {s}.drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date, "
        "drug_exposure_end_date, drug_type_concept_id, days_supply) "
        "VALUES (1, 1, ?, DATE '2010-03-20', DATE '2010-04-19', ?, 30)",
        [METFORMIN, EHR],
    )
    con.execute(
        f"INSERT INTO {s}.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id, visit_start_date, "
        "visit_end_date, visit_type_concept_id) VALUES (1, 1, ?, DATE '2010-03-15', DATE '2010-03-15', ?)",
        [OUTPATIENT, EHR],
    )
    con.execute(
        f"INSERT INTO {s}.measurement (measurement_id, person_id, measurement_concept_id, measurement_date, "
        "measurement_type_concept_id, value_as_number, unit_concept_id, range_low, range_high) "
        "VALUES (1, 2, ?, DATE '2011-07-01', ?, 120, ?, 90, 140)",
        [SYSTOLIC, EHR, MMHG],
    )
    con.execute(
        f"INSERT INTO {s}.death (person_id, death_date, death_type_concept_id, cause_concept_id) "
        "VALUES (2, DATE '2013-01-31', ?, 0)",
        [EHR],
    )
    con.execute(
        f"INSERT INTO {s}.cdm_source (cdm_source_name, cdm_source_abbreviation, cdm_holder, source_release_date, "
        "cdm_release_date, cdm_version_concept_id, vocabulary_version) "
        "VALUES ('fixture', 'fx', 'tests', DATE '2026-01-01', DATE '2026-01-02', 756265, 'v5 test')"
    )
