"""The DQD checks on a tiny hand-built CDM: a clean dataset passes everything that applies, and each
check type catches a case built to violate it, with exact violated / denominator counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from importlib import resources

import duckdb
import pytest

from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.dqd_spec import DqdCheck, applicable_checks, dqd_catalogue
from rwe_assets.lib.quality import dqd
from rwe_assets.lib.quality.dqd import (
    RESULT_COLUMNS,
    CheckResult,
    NotApplicable,
    concept_value_checks,
    run_checks,
    summarize,
    translate_bound,
)

TODAY = dt.date(2024, 6, 1)
MALE, FEMALE = 8507, 8532
EHR = 32817  # Type Concept
OUTPATIENT = 9202
DIABETES = 201826  # standard Condition
TESTICULAR_HYPOFUNCTION = 26662  # the catalogue says: plausible for males only
MALE_ANCESTOR = 4090861  # plausibleGenderUseDescendants (Male) in the catalogue
MALE_DESCENDANT = 40000002
NON_STANDARD = 40000001  # a Condition concept that is not standard
ACETAMINOPHEN = 1125315  # Drug, Ingredient
ACETAMINOPHEN_TABLET = 19000001  # Drug, Clinical Drug
BODY_WEIGHT = 3025315  # Measurement; plausible units 8739, 9346, 9373, 9529
KILOGRAM, CENTIMETER = 9529, 8582
CHOLESTEROL = 37393449  # Observation; concept-level bounds 50..500 in mg/dL
MG_PER_DL = 8840

CONCEPTS = [
    # concept_id, name, domain, vocabulary, class, standard
    (0, "No matching concept", "Metadata", "None", "Undefined", None),
    (MALE, "MALE", "Gender", "Gender", "Gender", "S"),
    (FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S"),
    (8527, "White", "Race", "Race", "Race", "S"),
    (38003564, "Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S"),
    (EHR, "EHR", "Type Concept", "Type Concept", "Type Concept", "S"),
    (OUTPATIENT, "Outpatient Visit", "Visit", "Visit", "Visit", "S"),
    (DIABETES, "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "S"),
    (TESTICULAR_HYPOFUNCTION, "Testicular hypofunction", "Condition", "SNOMED", "Clinical Finding", "S"),
    (MALE_ANCESTOR, "Disorder of male genital organ", "Condition", "SNOMED", "Clinical Finding", "S"),
    (MALE_DESCENDANT, "A disorder below it", "Condition", "SNOMED", "Clinical Finding", "S"),
    (NON_STANDARD, "Diabetes, source code", "Condition", "ICD10CM", "4-char billing code", None),
    (ACETAMINOPHEN, "acetaminophen", "Drug", "RxNorm", "Ingredient", "S"),
    (ACETAMINOPHEN_TABLET, "acetaminophen 500 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "S"),
    (BODY_WEIGHT, "Body weight", "Measurement", "LOINC", "Clinical Observation", "S"),
    (KILOGRAM, "kilogram", "Unit", "UCUM", "Unit", "S"),
    (CENTIMETER, "centimeter", "Unit", "UCUM", "Unit", "S"),
    (CHOLESTEROL, "Plasma total cholesterol level", "Observation", "SNOMED", "Observable Entity", "S"),
    (MG_PER_DL, "milligram per deciliter", "Unit", "UCUM", "Unit", "S"),
]
VOCABULARIES = ["None", "Gender", "Race", "Ethnicity", "Type Concept", "Visit", "SNOMED", "ICD10CM", "RxNorm"]
VOCABULARIES += ["LOINC", "UCUM"]
CLASSES = ["Undefined", "Gender", "Race", "Ethnicity", "Type Concept", "Visit", "Clinical Finding"]
CLASSES += ["4-char billing code", "Ingredient", "Clinical Drug", "Clinical Observation", "Unit"]
CLASSES += ["Observable Entity"]
DOMAINS = ["Metadata", "Gender", "Race", "Ethnicity", "Type Concept", "Visit", "Condition", "Drug"]
DOMAINS += ["Measurement", "Unit", "Observation"]


# --- the clean dataset ----------------------------------------------------------------------------


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: object) -> None:
    """One row; values written as literals (parameters cost DuckDB's Python client an import probe each)."""
    columns = ", ".join(values)
    con.execute(f"INSERT INTO cdm.{table} ({columns}) VALUES ({', '.join(map(literal, values.values()))})")


def person(con, person_id: int, gender: int, born: dt.date) -> None:
    insert(
        con,
        "person",
        person_id=person_id,
        gender_concept_id=gender,
        year_of_birth=born.year,
        month_of_birth=born.month,
        day_of_birth=born.day,
        birth_datetime=dt.datetime.combine(born, dt.time()),
        race_concept_id=8527,
        ethnicity_concept_id=38003564,
        gender_source_value="M" if gender == MALE else "F",
        gender_source_concept_id=0,
    )


def visit(con, visit_id: int, person_id: int, start: dt.date, end: dt.date | None = None) -> None:
    end = end or start
    insert(
        con,
        "visit_occurrence",
        visit_occurrence_id=visit_id,
        person_id=person_id,
        visit_concept_id=OUTPATIENT,
        visit_start_date=start,
        visit_start_datetime=dt.datetime.combine(start, dt.time(9)),
        visit_end_date=end,
        visit_end_datetime=dt.datetime.combine(end, dt.time(10)),
        visit_type_concept_id=EHR,
        visit_source_value="outpatient",
        visit_source_concept_id=0,
    )


def condition(con, condition_id: int, person_id: int, start: dt.date, **overrides: object) -> None:
    values: dict[str, object] = {
        "condition_occurrence_id": condition_id,
        "person_id": person_id,
        "condition_concept_id": DIABETES,
        "condition_start_date": start,
        "condition_start_datetime": dt.datetime.combine(start, dt.time(9)),
        "condition_end_date": start + dt.timedelta(days=10),
        "condition_end_datetime": dt.datetime.combine(start + dt.timedelta(days=10), dt.time(9)),
        "condition_type_concept_id": EHR,
        "visit_occurrence_id": person_id * 100,
        "condition_source_value": "E11.9",
        "condition_source_concept_id": NON_STANDARD,
    }
    insert(con, "condition_occurrence", **{**values, **overrides})


def drug(con, drug_id: int, person_id: int, start: dt.date, **overrides: object) -> None:
    values: dict[str, object] = {
        "drug_exposure_id": drug_id,
        "person_id": person_id,
        "drug_concept_id": ACETAMINOPHEN,
        "drug_exposure_start_date": start,
        "drug_exposure_start_datetime": dt.datetime.combine(start, dt.time(9)),
        "drug_exposure_end_date": start + dt.timedelta(days=29),
        "drug_exposure_end_datetime": dt.datetime.combine(start + dt.timedelta(days=29), dt.time(9)),
        "drug_type_concept_id": EHR,
        "quantity": 30.0,
        "days_supply": 30,
        "refills": 0,
        "visit_occurrence_id": person_id * 100,
        "drug_source_value": "161",
        "drug_source_concept_id": ACETAMINOPHEN,
    }
    insert(con, "drug_exposure", **{**values, **overrides})


def measurement(con, measurement_id: int, person_id: int, day: dt.date, **overrides: object) -> None:
    values: dict[str, object] = {
        "measurement_id": measurement_id,
        "person_id": person_id,
        "measurement_concept_id": BODY_WEIGHT,
        "measurement_date": day,
        "measurement_datetime": dt.datetime.combine(day, dt.time(9)),
        "measurement_type_concept_id": EHR,
        "value_as_number": 80.0,
        "unit_concept_id": KILOGRAM,
        "visit_occurrence_id": person_id * 100,
        "measurement_source_value": "29463-7",
        "measurement_source_concept_id": BODY_WEIGHT,
        "unit_source_value": "kg",
    }
    insert(con, "measurement", **{**values, **overrides})


def observation(con, observation_id: int, person_id: int, day: dt.date, **overrides: object) -> None:
    values: dict[str, object] = {
        "observation_id": observation_id,
        "person_id": person_id,
        "observation_concept_id": CHOLESTEROL,
        "observation_date": day,
        "observation_datetime": dt.datetime.combine(day, dt.time(9)),
        "observation_type_concept_id": EHR,
        "value_as_number": 180.0,
        "unit_concept_id": MG_PER_DL,
        "visit_occurrence_id": person_id * 100,
        "observation_source_value": "cholesterol",
        "observation_source_concept_id": CHOLESTEROL,
        "unit_source_value": "mg/dL",
    }
    insert(con, "observation", **{**values, **overrides})


def era(con, era_id: int, person_id: int, start: dt.date) -> None:
    insert(
        con,
        "condition_era",
        condition_era_id=era_id,
        person_id=person_id,
        condition_concept_id=DIABETES,
        condition_era_start_date=start,
        condition_era_end_date=start + dt.timedelta(days=10),
        condition_occurrence_count=1,
    )
    insert(
        con,
        "drug_era",
        drug_era_id=era_id,
        person_id=person_id,
        drug_concept_id=ACETAMINOPHEN,
        drug_era_start_date=start,
        drug_era_end_date=start + dt.timedelta(days=29),
        drug_exposure_count=1,
        gap_days=0,
    )


def observation_period(con, period_id: int, person_id: int, start: dt.date, end: dt.date) -> None:
    insert(
        con,
        "observation_period",
        observation_period_id=period_id,
        person_id=person_id,
        observation_period_start_date=start,
        observation_period_end_date=end,
        period_type_concept_id=EHR,
    )


def load_vocabulary(con: duckdb.DuckDBPyConnection) -> None:
    for concept_id, name, domain, vocabulary, concept_class, standard in CONCEPTS:
        insert(
            con,
            "concept",
            concept_id=concept_id,
            concept_name=name,
            domain_id=domain,
            vocabulary_id=vocabulary,
            concept_class_id=concept_class,
            standard_concept=standard,
            concept_code=str(concept_id),
            valid_start_date=dt.date(1970, 1, 1),
            valid_end_date=dt.date(2099, 12, 31),
        )
    for name in VOCABULARIES:
        insert(con, "vocabulary", vocabulary_id=name, vocabulary_name=name, vocabulary_concept_id=0)
    for name in CLASSES:
        insert(
            con, "concept_class", concept_class_id=name, concept_class_name=name, concept_class_concept_id=0
        )
    for name in DOMAINS:
        insert(con, "domain", domain_id=name, domain_name=name, domain_concept_id=0)
    for ancestor, descendant in [(MALE_ANCESTOR, MALE_ANCESTOR), (MALE_ANCESTOR, MALE_DESCENDANT)]:
        insert(
            con,
            "concept_ancestor",
            ancestor_concept_id=ancestor,
            descendant_concept_id=descendant,
            min_levels_of_separation=0 if ancestor == descendant else 1,
            max_levels_of_separation=0 if ancestor == descendant else 1,
        )


def clean_cdm() -> duckdb.DuckDBPyConnection:
    """A clean CDM: two persons (a man born 1980, a woman born 1990), one visit, condition, drug,
    measurement and observation each, observation periods and eras; every other table empty."""
    connection = duckdb.connect()
    for statement in cdm_ddl():
        connection.execute(statement)
    load_vocabulary(connection)
    for person_id, gender, born in [(1, MALE, dt.date(1980, 5, 1)), (2, FEMALE, dt.date(1990, 1, 1))]:
        person(connection, person_id, gender, born)
        observation_period(connection, person_id, person_id, dt.date(2015, 1, 1), dt.date(2023, 12, 31))
        visit(connection, person_id * 100, person_id, dt.date(2020, 3, 1), dt.date(2020, 3, 3))
        condition(connection, person_id, person_id, dt.date(2020, 3, 1))
        drug(connection, person_id, person_id, dt.date(2020, 3, 1))
        measurement(connection, person_id, person_id, dt.date(2020, 3, 1))
        observation(connection, person_id, person_id, dt.date(2020, 3, 1))
        era(connection, person_id, person_id, dt.date(2020, 3, 1))
    return connection


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = clean_cdm()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def clean_results() -> list[CheckResult]:
    """Every catalogue check on the clean CDM (run once: the whole suite takes a few seconds)."""
    connection = clean_cdm()
    results = run_checks(connection, results_schema=None, run_id="clean", today=TODAY)
    connection.close()
    return results


def run(
    con: duckdb.DuckDBPyConnection,
    *check_names: str,
    tables: tuple[str, ...] = (),
    extra: list[DqdCheck] | None = None,
) -> dict[str, CheckResult]:
    """Results by check_id of the catalogue's checks of the given types (all when none given), on the
    given tables (all when none given)."""
    checks = [
        c
        for c in applicable_checks()
        if (not check_names or c.check_name in check_names) and (not tables or c.table in tables)
    ]
    results = run_checks(con, results_schema=None, run_id="test", checks=checks + (extra or []), today=TODAY)
    return {r.check_id: r for r in results}


def counts(result: CheckResult) -> tuple[int | None, int | None, str]:
    return result.num_violated_rows, result.num_denominator_rows, result.status


# --- the whole suite ------------------------------------------------------------------------------


def test_clean_dataset_passes_everything_that_applies(clean_results):
    results = clean_results

    problems = [
        (r.check_id, r.status, r.num_violated_rows, r.error_message)
        for r in results
        if r.status in ("FAIL", "ERROR")
    ]
    assert problems == []
    summary = summarize(results)
    assert summary["pass_rate"] == 1.0
    assert summary["passed"] + summary["not_applicable"] == summary["total"] == len(results)
    # the populated tables are really checked
    for table in ("person", "condition_occurrence", "drug_exposure", "measurement", "visit_occurrence"):
        assert summary["by_table"][table]["passed"] > 10


def test_one_result_per_catalogue_check_per_table(clean_results):
    results = clean_results

    catalogue = list(applicable_checks())
    assert Counter(r.cdm_table for r in results) == Counter(c.table for c in catalogue)
    assert Counter(r.check_name for r in results) == Counter(c.check_name for c in catalogue)
    assert [(r.check_name, r.cdm_table, r.cdm_field) for r in results] == [
        (c.check_name, c.table, c.field) for c in catalogue
    ]
    assert len({r.check_id for r in results}) == len(results)


def test_every_check_type_of_the_catalogue_has_a_template():
    names = {t.name for t in dqd_catalogue().check_types}
    templates = {
        p.name.removesuffix(".sql")
        for p in (resources.files("rwe_assets.lib") / "sql" / "quality").iterdir()
        if p.name.endswith(".sql")
    }
    assert len(names) == 27
    assert names == templates == set(dqd.check_types_with_templates())


def test_results_table_is_written_and_replaced_per_run(con):
    person_checks = [c for c in applicable_checks() if c.table == "person"]
    run_checks(con, run_id="first", today=TODAY, checks=person_checks)
    run_checks(con, run_id="first", today=TODAY, checks=person_checks)
    second = run_checks(con, run_id="second", today=TODAY, checks=list(applicable_checks(["TABLE"])))

    assert [f.name for f in dataclasses.fields(CheckResult)] == [name for name, _ in RESULT_COLUMNS]
    rows = dict(
        con.execute("SELECT run_id, count(*) FROM results.dq_check_results GROUP BY run_id").fetchall()
    )
    assert rows == {"first": len(person_checks), "second": len(second)}
    failed = con.execute(
        "SELECT count(*) FROM results.dq_check_results WHERE run_id = 'first' AND (failed OR is_error)"
    ).fetchone()
    assert failed == (0,)
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'results' AND table_name = 'dq_check_results' ORDER BY ordinal_position"
    ).fetchall()
    assert columns == list(RESULT_COLUMNS)


def test_merged_table_scans_give_the_same_counts_as_single_queries(con):
    condition(con, 3, 1, dt.date(1979, 1, 1), condition_concept_id=0, condition_source_value=None)
    drug(con, 3, 2, dt.date(2020, 1, 1), days_supply=400, refills=30)

    checks = [c for c in applicable_checks(["FIELD"]) if c.check_name != "cdmField"]
    merged = run_checks(con, results_schema=None, run_id="merged", today=TODAY, checks=checks)
    assert sum(r.status == "FAIL" for r in merged) >= 5
    for result in merged:
        if result.status in ("PASS", "FAIL") and result.sql:
            violated, denominator = con.execute(result.sql).fetchone()
            assert (violated or 0, denominator) == (result.num_violated_rows, result.num_denominator_rows), (
                result.check_id
            )


def test_attached_read_only_database_with_qualified_schema(con, tmp_path):
    path = tmp_path / "cdm.duckdb"
    con.execute(f"ATTACH '{path}' AS target")
    con.execute("COPY FROM DATABASE memory TO target")
    con.execute("DETACH target")
    reader = duckdb.connect()
    reader.execute(f"ATTACH '{path}' AS db (READ_ONLY)")

    checks = [c for c in applicable_checks() if c.table in ("person", "condition_occurrence", "concept")]
    results = run_checks(reader, schema="db.cdm", run_id="attached", checks=checks, today=TODAY)

    assert {r.status for r in results} == {"PASS", "NOT_APPLICABLE"}
    assert sum(r.status == "PASS" for r in results) > 100
    assert reader.execute("SELECT count(*) FROM memory.results.dq_check_results").fetchone() == (
        len(results),
    )


# --- one violation per check type -----------------------------------------------------------------


def test_duplicate_primary_key(con):
    person(con, 1, MALE, dt.date(1980, 5, 1))

    assert counts(run(con, "isPrimaryKey")["isPrimaryKey.person.person_id"]) == (2, 3, "FAIL")


def test_orphan_person_foreign_key(con):
    condition(con, 3, 99, dt.date(2020, 3, 1))

    results = run(con, "isForeignKey")
    assert counts(results["isForeignKey.condition_occurrence.person_id"]) == (1, 3, "FAIL")
    assert counts(results["isForeignKey.condition_occurrence.condition_concept_id"]) == (0, 3, "PASS")


def test_unknown_concept_is_a_foreign_key_violation(con):
    condition(con, 3, 1, dt.date(2020, 3, 1), condition_concept_id=123456789)

    results = run(con, "isForeignKey", "fkDomain", "isStandardValidConcept")
    assert counts(results["isForeignKey.condition_occurrence.condition_concept_id"]) == (1, 3, "FAIL")
    # left to isForeignKey, not counted twice
    assert counts(results["fkDomain.condition_occurrence.condition_concept_id"]) == (0, 3, "PASS")
    assert counts(results["isStandardValidConcept.condition_occurrence.condition_concept_id"]) == (
        0,
        3,
        "PASS",
    )


def test_wrong_domain_concept(con):
    condition(con, 3, 1, dt.date(2020, 3, 1), condition_concept_id=ACETAMINOPHEN)

    results = run(con, "fkDomain")
    assert counts(results["fkDomain.condition_occurrence.condition_concept_id"]) == (1, 3, "FAIL")
    assert counts(results["fkDomain.drug_exposure.drug_concept_id"]) == (0, 2, "PASS")


def test_concept_of_the_wrong_class(con):
    insert(
        con,
        "drug_era",
        drug_era_id=3,
        person_id=1,
        drug_concept_id=ACETAMINOPHEN_TABLET,
        drug_era_start_date=dt.date(2021, 1, 1),
        drug_era_end_date=dt.date(2021, 1, 30),
    )

    assert counts(run(con, "fkClass")["fkClass.drug_era.drug_concept_id"]) == (1, 3, "FAIL")


def test_non_standard_concept(con):
    condition(con, 3, 1, dt.date(2020, 3, 1), condition_concept_id=NON_STANDARD)

    results = run(con, "isStandardValidConcept", "fkDomain")
    assert counts(results["isStandardValidConcept.condition_occurrence.condition_concept_id"]) == (
        1,
        3,
        "FAIL",
    )
    assert counts(results["fkDomain.condition_occurrence.condition_concept_id"]) == (0, 3, "PASS")


def test_invalid_concept_is_not_standard_valid(con):
    con.execute(f"UPDATE cdm.concept SET invalid_reason = 'D' WHERE concept_id = {DIABETES}")

    results = run(con, "isStandardValidConcept")
    assert counts(results["isStandardValidConcept.condition_occurrence.condition_concept_id"]) == (
        2,
        2,
        "FAIL",
    )


def test_missing_required_field(con):
    con.execute("ALTER TABLE cdm.condition_occurrence ALTER COLUMN condition_start_date DROP NOT NULL")
    condition(con, 3, 1, dt.date(2020, 3, 1))
    con.execute(
        "UPDATE cdm.condition_occurrence SET condition_start_date = NULL WHERE condition_occurrence_id = 3"
    )

    results = run(con, "isRequired", "measureValueCompleteness")
    assert counts(results["isRequired.condition_occurrence.condition_start_date"]) == (1, 3, "FAIL")
    assert counts(results["measureValueCompleteness.condition_occurrence.condition_start_date"]) == (
        1,
        3,
        "FAIL",
    )
    assert counts(results["isRequired.condition_occurrence.person_id"]) == (0, 3, "PASS")


def test_integer_field_holding_text(con):
    con.execute("ALTER TABLE cdm.person ALTER COLUMN year_of_birth TYPE VARCHAR")
    con.execute("UPDATE cdm.person SET year_of_birth = '19x0' WHERE person_id = 2")

    results = run(con, "cdmDatatype", "plausibleValueLow")
    assert counts(results["cdmDatatype.person.year_of_birth"]) == (1, 2, "FAIL")
    assert counts(results["cdmDatatype.person.month_of_birth"]) == (0, 2, "PASS")
    low = results["plausibleValueLow.person.year_of_birth"]
    assert low.status == "NOT_APPLICABLE"
    assert "does not fit a VARCHAR field" in low.not_applicable_reason


def test_event_before_birth(con):
    condition(con, 3, 2, dt.date(1989, 12, 31))  # the woman is born 1990-01-01

    results = run(con, "plausibleAfterBirth", "plausibleTemporalAfter")
    assert counts(results["plausibleAfterBirth.condition_occurrence.condition_start_date"]) == (1, 3, "FAIL")
    assert counts(results["plausibleTemporalAfter.condition_occurrence.condition_start_date"]) == (
        1,
        3,
        "FAIL",
    )
    assert counts(results["plausibleAfterBirth.drug_exposure.drug_exposure_start_date"]) == (0, 2, "PASS")


def test_birth_from_year_and_month_when_birth_datetime_is_missing(con):
    con.execute("UPDATE cdm.person SET birth_datetime = NULL")
    condition(con, 3, 2, dt.date(1989, 12, 31))  # before January 1990: implausible
    condition(con, 4, 1, dt.date(1980, 5, 1))  # born in May 1980, day unknown to the check: plausible

    results = run(con, "plausibleAfterBirth", "plausibleTemporalAfter")
    assert counts(results["plausibleAfterBirth.condition_occurrence.condition_start_date"]) == (1, 4, "FAIL")
    # the catalogue compares with birth_datetime itself: nothing to compare with
    after = results["plausibleTemporalAfter.condition_occurrence.condition_start_date"]
    assert after.status == "NOT_APPLICABLE"


def test_events_after_death(con):
    insert(con, "death", person_id=2, death_date=dt.date(2021, 1, 1), death_type_concept_id=EHR)
    visit(con, 201, 2, dt.date(2021, 1, 1))  # the day of death: plausible
    visit(con, 202, 2, dt.date(2021, 1, 31))  # 30 days after
    visit(con, 203, 2, dt.date(2021, 3, 2))  # 60 days after: still within DQD's grace
    visit(con, 204, 2, dt.date(2021, 3, 3))  # 61 days after

    results = run(con, "plausibleDuringLife", "plausibleBeforeDeath")
    # denominators: the 5 visits of the person who died; the man's visit does not count
    assert counts(results["plausibleDuringLife.visit_occurrence.visit_start_date"]) == (3, 5, "FAIL")
    assert counts(results["plausibleBeforeDeath.visit_occurrence.visit_start_date"]) == (1, 5, "FAIL")
    assert counts(results["plausibleBeforeDeath.visit_occurrence.visit_start_datetime"]) == (1, 5, "FAIL")
    assert counts(results["plausibleBeforeDeath.condition_occurrence.condition_start_date"]) == (0, 1, "PASS")


def test_no_deaths_makes_death_checks_not_applicable(con):
    results = run(con, "plausibleBeforeDeath")

    result = results["plausibleBeforeDeath.visit_occurrence.visit_start_date"]
    assert result.status == "NOT_APPLICABLE"
    assert result.num_denominator_rows == 0
    assert result.not_applicable_reason == "nothing to evaluate: no records of persons with a death record"


def test_end_before_start(con):
    visit(con, 201, 2, dt.date(2021, 1, 10), dt.date(2021, 1, 9))

    results = run(con, "plausibleStartBeforeEnd", "plausibleTemporalAfter")
    assert counts(results["plausibleStartBeforeEnd.visit_occurrence.visit_start_date"]) == (1, 3, "FAIL")
    assert counts(results["plausibleStartBeforeEnd.visit_occurrence.visit_start_datetime"]) == (1, 3, "FAIL")
    assert counts(results["plausibleTemporalAfter.visit_occurrence.visit_end_date"]) == (1, 3, "FAIL")


def test_same_day_end_earlier_in_the_day_counts_only_for_datetimes(con):
    insert(
        con,
        "visit_occurrence",
        visit_occurrence_id=201,
        person_id=2,
        visit_concept_id=OUTPATIENT,
        visit_start_date=dt.date(2021, 1, 10),
        visit_start_datetime=dt.datetime(2021, 1, 10, 12),
        visit_end_date=dt.date(2021, 1, 10),
        visit_end_datetime=dt.datetime(2021, 1, 10, 11),
        visit_type_concept_id=EHR,
    )

    results = run(con, "plausibleStartBeforeEnd")
    assert counts(results["plausibleStartBeforeEnd.visit_occurrence.visit_start_date"]) == (0, 3, "PASS")
    assert counts(results["plausibleStartBeforeEnd.visit_occurrence.visit_start_datetime"]) == (1, 3, "FAIL")


def test_male_only_concept_in_a_female(con):
    condition(con, 3, 2, dt.date(2020, 3, 1), condition_concept_id=TESTICULAR_HYPOFUNCTION)
    condition(con, 4, 1, dt.date(2020, 3, 1), condition_concept_id=TESTICULAR_HYPOFUNCTION)

    results = run(con, "plausibleGender")
    check = f"plausibleGender.condition_occurrence.condition_concept_id.{TESTICULAR_HYPOFUNCTION}"
    assert counts(results[check]) == (1, 2, "FAIL")  # 50% > 5%
    absent = "plausibleGender.condition_occurrence.condition_concept_id.26935"
    assert results[absent].status == "NOT_APPLICABLE"
    assert "does not occur" in results[absent].not_applicable_reason


def test_unknown_gender_is_not_implausible(con):
    con.execute("UPDATE cdm.person SET gender_concept_id = 0 WHERE person_id = 2")
    condition(con, 3, 2, dt.date(2020, 3, 1), condition_concept_id=TESTICULAR_HYPOFUNCTION)

    check = f"plausibleGender.condition_occurrence.condition_concept_id.{TESTICULAR_HYPOFUNCTION}"
    assert counts(run(con, "plausibleGender")[check]) == (0, 1, "PASS")


def test_descendant_of_a_male_only_concept_in_a_female(con):
    condition(con, 3, 2, dt.date(2020, 3, 1), condition_concept_id=MALE_DESCENDANT)

    results = run(con, "plausibleGenderUseDescendants")
    applied = [r for r in results.values() if r.status != "NOT_APPLICABLE"]
    assert [(r.concept_ids.split(",")[0], *counts(r)) for r in applied] == [
        (str(MALE_ANCESTOR), 1, 1, "FAIL")
    ]


def test_implausible_field_values(con):
    drug(con, 3, 1, dt.date(2020, 5, 1), days_supply=400)
    drug(con, 4, 1, dt.date(2020, 6, 1), days_supply=0)

    results = run(con, "plausibleValueLow", "plausibleValueHigh")
    assert counts(results["plausibleValueHigh.drug_exposure.days_supply"]) == (1, 4, "FAIL")
    assert counts(results["plausibleValueLow.drug_exposure.days_supply"]) == (1, 4, "FAIL")
    assert counts(results["plausibleValueHigh.drug_exposure.refills"]) == (0, 4, "PASS")


def test_implausible_dates(con):
    condition(con, 3, 1, dt.date(1949, 12, 31))  # before 1950
    condition(con, 4, 1, TODAY + dt.timedelta(days=1))  # tomorrow: still plausible
    condition(con, 5, 1, TODAY + dt.timedelta(days=2))  # after tomorrow

    results = run(con, "plausibleValueLow", "plausibleValueHigh")
    assert counts(results["plausibleValueLow.condition_occurrence.condition_start_date"]) == (1, 5, "FAIL")
    assert counts(results["plausibleValueLow.condition_occurrence.condition_start_datetime"]) == (
        1,
        5,
        "FAIL",
    )
    assert counts(results["plausibleValueHigh.condition_occurrence.condition_start_date"]) == (1, 5, "FAIL")
    assert counts(results["plausibleValueHigh.condition_occurrence.condition_start_datetime"]) == (
        1,
        5,
        "FAIL",
    )


def test_implausible_measurement_value_with_the_concept_level_bounds(con):
    observation(con, 3, 1, dt.date(2021, 1, 1), value_as_number=5000.0)  # mg/dL; plausible up to 500
    observation(con, 4, 2, dt.date(2021, 1, 1), value_as_number=40.0)  # below 50

    extra = list(concept_value_checks())
    results = run(con, "cdmTable", extra=extra)
    high = results[f"plausibleValueHigh.observation.observation_concept_id.{CHOLESTEROL}.{MG_PER_DL}"]
    low = results[f"plausibleValueLow.observation.observation_concept_id.{CHOLESTEROL}.{MG_PER_DL}"]
    assert counts(high) == (1, 4, "FAIL")
    assert counts(low) == (1, 4, "FAIL")
    assert high.check_level == "CONCEPT" and high.kahn_category == "Plausibility"
    other_unit = results[f"plausibleValueHigh.observation.observation_concept_id.{CHOLESTEROL}.8753"]
    assert other_unit.status == "NOT_APPLICABLE"


def test_implausible_units(con):
    measurement(con, 3, 1, dt.date(2021, 1, 1), unit_concept_id=CENTIMETER)
    measurement(con, 4, 1, dt.date(2021, 2, 1), unit_concept_id=None)
    measurement(con, 5, 1, dt.date(2021, 3, 1), unit_concept_id=CENTIMETER, value_as_number=None)  # no number

    results = run(con, "plausibleUnitConceptIds")
    check = f"plausibleUnitConceptIds.measurement.measurement_concept_id.{BODY_WEIGHT}"
    assert counts(results[check]) == (2, 4, "FAIL")


def test_concept_zero_with_null_source_value(con):
    condition(con, 3, 1, dt.date(2020, 3, 1), condition_concept_id=0, condition_source_value=None)

    results = run(
        con, "standardConceptRecordCompleteness", "sourceValueCompleteness", "measureValueCompleteness"
    )
    assert counts(results["standardConceptRecordCompleteness.condition_occurrence.condition_concept_id"]) == (
        1,
        3,
        "FAIL",  # 33% > 5%
    )
    # a NULL source value is no source value: one distinct value (E11.9), mapped
    assert counts(results["sourceValueCompleteness.condition_occurrence.condition_source_value"]) == (
        0,
        1,
        "PASS",
    )
    assert counts(results["measureValueCompleteness.condition_occurrence.condition_source_value"]) == (
        1,
        3,
        "PASS",  # threshold 100%
    )


def test_unmapped_source_values_count_once_each(con):
    for number in (3, 4, 5):
        condition(con, number, 1, dt.date(2020, 3, 1), condition_concept_id=0, condition_source_value="R99")
    condition(con, 6, 1, dt.date(2020, 3, 1), condition_concept_id=0, condition_source_value="R98")

    results = run(con, "sourceValueCompleteness", "standardConceptRecordCompleteness")
    assert counts(results["sourceValueCompleteness.condition_occurrence.condition_source_value"]) == (
        2,
        3,
        "FAIL",
    )
    assert counts(results["standardConceptRecordCompleteness.condition_occurrence.condition_concept_id"]) == (
        4,
        6,
        "FAIL",
    )


def test_source_concept_zero(con):
    condition(con, 3, 1, dt.date(2020, 3, 1), condition_source_concept_id=0)

    results = run(con, "sourceConceptRecordCompleteness")
    result = results["sourceConceptRecordCompleteness.condition_occurrence.condition_source_concept_id"]
    assert counts(result) == (1, 3, "FAIL")  # 33% > 10%


def test_event_outside_its_visit(con):
    condition(con, 3, 1, dt.date(2020, 3, 10))  # visit 100 ends 2020-03-03: 7 days later is the limit
    condition(con, 4, 1, dt.date(2020, 3, 11))
    condition(con, 5, 1, dt.date(2020, 2, 22))  # 8 days before the start

    results = run(con, "withinVisitDates")
    assert counts(results["withinVisitDates.condition_occurrence.condition_start_date"]) == (2, 5, "FAIL")


def test_person_without_records(con):
    person(con, 3, FEMALE, dt.date(2000, 1, 1))
    observation_period(con, 3, 3, dt.date(2015, 1, 1), dt.date(2023, 12, 31))

    results = run(con, "measurePersonCompleteness")
    assert counts(results["measurePersonCompleteness.visit_occurrence"]) == (1, 3, "PASS")  # 33% <= 95%
    assert counts(results["measurePersonCompleteness.observation_period"]) == (0, 3, "PASS")
    assert results["measurePersonCompleteness.device_exposure"].status == "NOT_APPLICABLE"


def test_person_without_observation_period(con):
    person(con, 3, FEMALE, dt.date(2000, 1, 1))

    results = run(con, "measurePersonCompleteness")
    assert counts(results["measurePersonCompleteness.observation_period"]) == (1, 3, "FAIL")  # threshold 0


def test_missing_condition_era(con):
    con.execute("DELETE FROM cdm.condition_era WHERE person_id = 2")

    results = run(con, "measureConditionEraCompleteness")
    assert counts(results["measureConditionEraCompleteness.condition_era"]) == (1, 2, "FAIL")


def test_empty_condition_era_table_with_conditions_fails(con):
    con.execute("DELETE FROM cdm.condition_era")

    results = run(con, "measureConditionEraCompleteness", "isPrimaryKey")
    assert counts(results["measureConditionEraCompleteness.condition_era"]) == (2, 2, "FAIL")
    assert results["isPrimaryKey.condition_era.condition_era_id"].status == "NOT_APPLICABLE"


def test_overlapping_and_back_to_back_observation_periods(con):
    observation_period(
        con, 3, 1, dt.date(2024, 1, 1), dt.date(2024, 3, 1)
    )  # 2023-12-31 + 1 day: back to back
    observation_period(con, 4, 2, dt.date(2024, 1, 2), dt.date(2024, 3, 1))  # a one-day gap: fine

    results = run(con, "measureObservationPeriodOverlap")
    assert counts(results["measureObservationPeriodOverlap.observation_period"]) == (1, 2, "FAIL")


def test_overlap_within_an_earlier_long_period(con):
    observation_period(con, 3, 1, dt.date(2016, 1, 1), dt.date(2016, 2, 1))  # inside 2015..2023

    results = run(con, "measureObservationPeriodOverlap")
    assert counts(results["measureObservationPeriodOverlap.observation_period"]) == (1, 2, "FAIL")


def test_empty_table_is_not_applicable_except_existence(clean_results):
    device = [r for r in clean_results if r.cdm_table == "device_exposure"]
    statuses = Counter((r.check_name in ("cdmTable", "cdmField"), r.status) for r in device)
    assert statuses == {
        (True, "PASS"): 1
        + sum(1 for c in applicable_checks() if c.check_name == "cdmField" and c.table == "device_exposure"),
        (False, "NOT_APPLICABLE"): len(device) - statuses[(True, "PASS")],
    }
    assert all(
        r.not_applicable_reason == "table device_exposure is empty"
        for r in device
        if r.status == "NOT_APPLICABLE"
    )


def test_missing_table_fails_existence_and_the_rest_is_not_applicable(con):
    con.execute("DROP TABLE cdm.note")
    con.execute("ALTER TABLE cdm.person DROP COLUMN ethnicity_source_value")

    results = run(con, tables=("note", "person"))
    assert counts(results["cdmTable.note"]) == (1, 1, "FAIL")
    assert counts(results["cdmField.note.note_text"]) == (1, 1, "FAIL")
    assert (
        results["isRequired.note.note_id"].not_applicable_reason == "table note does not exist in memory.cdm"
    )
    assert counts(results["cdmField.person.ethnicity_source_value"]) == (1, 1, "FAIL")
    assert counts(results["cdmField.person.race_source_value"]) == (0, 1, "PASS")
    completeness = results["measureValueCompleteness.person.ethnicity_source_value"]
    assert completeness.not_applicable_reason == "field person.ethnicity_source_value does not exist"


def test_sql_error_is_recorded_not_raised(con):
    broken = DqdCheck(
        check_name="isForeignKey",
        level="FIELD",
        table="person",
        field="gender_concept_id",
        concept_ids=(),
        unit_concept_id=None,
        threshold_pct=0.0,
        severity="fatal",
        params={"fkTableName": "person", "fkFieldName": "gender_source_value"},  # 'M' is no integer
    )

    (result,) = run_checks(con, results_schema=None, checks=[broken], today=TODAY)
    assert result.status == "ERROR" and result.is_error and not result.failed
    assert "Conversion Error" in result.error_message
    assert summarize([result])["errors"] == 1 and summarize([result])["pass_rate"] == 0.0


# --- pieces -----------------------------------------------------------------------------------------


def test_translate_bound():
    today = dt.date(2024, 2, 28)
    assert translate_bound("'19500101'", "DATE", high=False, today=today) == dt.date(1950, 1, 1)
    assert translate_bound("'19500101'", "TIMESTAMP", high=False, today=today) == dt.datetime(1950, 1, 1)
    assert translate_bound("DATEADD(dd,1,GETDATE())", "DATE", high=True, today=today) == dt.date(2024, 2, 29)
    assert translate_bound("DATEADD(dd,1,GETDATE())", "TIMESTAMP", high=True, today=today) == dt.datetime(
        2024, 2, 29, 23, 59, 59, 999999
    )
    assert translate_bound(
        "DATEADD(yy,-1,GETDATE())", "DATE", high=True, today=dt.date(2024, 2, 29)
    ) == dt.date(2023, 2, 28)
    assert translate_bound("YEAR(GETDATE())+1", "INTEGER", high=True, today=today) == 2025
    assert translate_bound("365", "INTEGER", high=True, today=today) == 365
    assert translate_bound("0.0000001", "DOUBLE", high=False, today=today) == 1e-7
    with pytest.raises(NotApplicable, match="cannot translate"):
        translate_bound("EOMONTH(GETDATE())", "DATE", high=True, today=today)
    with pytest.raises(NotApplicable, match="does not fit"):
        translate_bound("'19500101'", "INTEGER", high=False, today=today)


def test_summarize_counts_and_pass_rate():
    def result(table: str, status: str) -> CheckResult:
        return CheckResult(
            **{
                **{f.name: None for f in dataclasses.fields(CheckResult)},
                "cdm_table": table,
                "check_name": "isRequired",
                "kahn_category": "Conformance",
                "status": status,
                "failed": status == "FAIL",
                "not_applicable": status == "NOT_APPLICABLE",
                "is_error": status == "ERROR",
            }
        )

    results = [result("person", "PASS"), result("person", "FAIL"), result("note", "NOT_APPLICABLE")]
    results += [result("note", "PASS"), result("note", "ERROR")]

    summary = summarize(results)
    assert {k: summary[k] for k in ("total", "passed", "failed", "not_applicable", "errors")} == {
        "total": 5,
        "passed": 2,
        "failed": 1,
        "not_applicable": 1,
        "errors": 1,
    }
    assert summary["pass_rate"] == 0.5
    assert summary["by_table"]["note"] == {
        "total": 3,
        "passed": 1,
        "failed": 0,
        "not_applicable": 1,
        "errors": 1,
        "cannot_fail": 0,
        "pass_rate": 0.5,
        "dqd_pass_rate": 0.5,
    }
    assert summarize([])["pass_rate"] is None
