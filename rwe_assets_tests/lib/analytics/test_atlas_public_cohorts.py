"""The seven public ATLAS cohort definitions (OHDSI PhenotypeLibrary, copied unchanged to
rwe_assets_tests/data/atlas_cohorts) run on a hand-built CDM whose persons sit on each definition's boundaries. Every expected row is
derived by hand from Circe's semantics (the SQL Circe generates):

- primary events: a criterion's events whose start lies in an observation period with PriorDays
  before and PostDays after it; `First` on a criterion is the person's first event of the concept
  set ever (before the observation window and before any value filter); PrimaryCriteriaLimit
  First/Last keeps one event per person after the window;
- QualifiedLimit only applies when the definition has AdditionalCriteria (Circe ignores it
  otherwise), ExpressionLimit after the inclusion rules;
- DateOffset end: the event's date plus the offset, capped at its observation period's end; an end
  before the start leaves no row; without an end strategy the end is the observation period's end;
- eras: an event joins the era before it when it starts on or before that era's end + EraPad.

Condition end dates missing: start + 1 day; observation and measurement: date + 1 day.
The vocabulary is hand-built too: only the concepts and ancestry each case needs, with the
definitions' real concept ids.
"""

from __future__ import annotations

import copy
import datetime as dt
import json

import duckdb
import pytest

from rwe_assets.lib.analytics.cohorts import UnsupportedCohortConstruct, compile_cohort
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.analytics.test_cohorts import add, person

SHARED = REPO_DIR / "rwe_assets_tests" / "data" / "atlas_cohorts"
D = dt.date.fromisoformat
PERCENT, MMOL_PER_MOL = 8554, 9579

# concept -> its parents (the hand-built hierarchy; a concept is its own ancestor, as in Athena)
HIERARCHY = {
    201820: [],  # diabetes mellitus
    201826: [201820],  # type 2 diabetes mellitus
    443732: [201826],  # a disorder due to type 2 diabetes
    201254: [201820],  # type 1 diabetes mellitus (excluded from 40's and 288's T2DM sets)
    40484649: [201254],  # a type 1 diabetes child (288's T1DM set)
    195771: [],  # secondary diabetes mellitus
    320128: [],  # essential hypertension: in no set
    378419: [],  # Alzheimer's disease
    31967: [],  # nausea
    4158495: [],  # vomiting
    40769338: [],  # history of diabetes (observation)
    4112853: [],  # malignant tumor of breast
    36532266: [4112853],  # a breast cancer concept 788 excludes
    21600744: [],  # ATC blood glucose lowering drugs excluding insulins
    1503297: [21600744],  # metformin
    4184637: [],  # hemoglobin A1c measurement (288's set, with descendants)
    3004410: [4184637],  # hemoglobin A1c/hemoglobin.total in blood (957's set, no descendants)
}


def _ancestors(concept: int) -> set[int]:
    found = {concept}
    for parent in HIERARCHY[concept]:
        found |= _ancestors(parent)
    return found


@pytest.fixture
def con():
    connection = duckdb.connect()
    for statement in [*cdm_ddl(), "CREATE SCHEMA IF NOT EXISTS results"]:
        connection.execute(statement)
    for concept in HIERARCHY:
        add(connection, "concept", concept_id=concept, concept_name=f"c{concept}", standard_concept="S")
        for ancestor in _ancestors(concept):
            add(
                connection,
                "concept_ancestor",
                ancestor_concept_id=ancestor,
                descendant_concept_id=concept,
            )
    yield connection
    connection.close()


def definition(cohort_id: int) -> dict:
    files = sorted(SHARED.glob("*.json"))
    assert len(files) == 7, f"the seven public definitions are expected in {SHARED}"
    return json.loads((SHARED / f"{cohort_id}.json").read_text(encoding="utf-8"))


def cohort(con, expression: dict) -> list[tuple]:
    return con.sql(
        "SELECT subject_id, cohort_start_date::VARCHAR, cohort_end_date::VARCHAR "
        f"FROM ({compile_cohort(expression)}) ORDER BY 1, 2"
    ).fetchall()


def cond(con, pid: int, concept: int, start: str, end: str | None = None) -> None:
    add(
        con,
        "condition_occurrence",
        person_id=pid,
        condition_concept_id=concept,
        condition_start_date=D(start),
        condition_end_date=D(end) if end else None,
    )


def obs(con, pid: int, concept: int, day: str) -> None:
    add(con, "observation", person_id=pid, observation_concept_id=concept, observation_date=D(day))


def drug(con, pid: int, concept: int, start: str, end: str) -> None:
    add(
        con,
        "drug_exposure",
        person_id=pid,
        drug_concept_id=concept,
        drug_exposure_start_date=D(start),
        drug_exposure_end_date=D(end),
    )


def meas(con, pid: int, concept: int, day: str, value: float, unit: int) -> None:
    add(
        con,
        "measurement",
        person_id=pid,
        measurement_concept_id=concept,
        measurement_date=D(day),
        value_as_number=value,
        unit_concept_id=unit,
    )


YEAR_2020 = [("2020-01-01", "2020-12-31")]
TWO_YEARS = [("2020-01-01", "2021-12-31")]


# ---------------------------------------------------------------- every event, DateOffset ends, eras


def test_503_type2_diabetes_every_event_with_era_pad_one(con):
    person(con, 1, YEAR_2020)
    cond(con, 1, 201826, "2020-02-01")  # ends 02-02
    cond(con, 1, 443732, "2020-02-03")  # a descendant; starts within 1 day of 02-02: same era, ends 02-04
    cond(con, 1, 201826, "2020-06-01", "2020-06-10")
    cond(con, 1, 201826, "2020-06-12", "2020-06-20")  # 2 days after 06-10: a new era
    person(con, 2, YEAR_2020)
    cond(con, 2, 201826, "2019-05-01")  # before any observation
    cond(con, 2, 201826, "2020-12-20", "2021-01-15")  # end capped at the period's end
    person(con, 3, YEAR_2020)
    cond(con, 3, 201826, "2020-03-10", "2020-03-01")  # end recorded before the start: no row
    person(con, 4, YEAR_2020)
    cond(con, 4, 320128, "2020-03-01")
    # QualifiedLimit First is ignored: 503 has no AdditionalCriteria
    assert cohort(con, definition(503)) == [
        (1, "2020-02-01", "2020-02-04"),
        (1, "2020-06-01", "2020-06-10"),
        (1, "2020-06-12", "2020-06-20"),
        (2, "2020-12-20", "2020-12-31"),
    ]


def test_100_alzheimers_era_pad_joins_a_one_day_gap_not_two(con):
    person(con, 1, YEAR_2020)
    cond(con, 1, 378419, "2020-01-01", "2020-01-05")
    cond(con, 1, 378419, "2020-01-06")  # the day after 01-05: joins, ends 01-07
    cond(con, 1, 378419, "2020-01-09")  # 2 days after 01-07: apart
    assert cohort(con, definition(100)) == [(1, "2020-01-01", "2020-01-07"), (1, "2020-01-09", "2020-01-10")]


def test_10_nausea_conditions_and_observations_end_14_days_after(con):
    person(con, 1, YEAR_2020)
    cond(con, 1, 31967, "2020-03-01")  # ends 03-02 + 14 = 03-16
    obs(con, 1, 31967, "2020-03-10")  # starts before 03-16: same era, ends 03-11 + 14 = 03-25
    cond(con, 1, 31967, "2020-05-01", "2020-05-03")  # ends 05-17
    person(con, 2, YEAR_2020)
    obs(con, 2, 4158495, "2020-12-25")  # 12-26 + 14 capped at 12-31
    person(con, 3, YEAR_2020)
    cond(con, 3, 31967, "2020-04-01")  # ends 04-16
    cond(con, 3, 4158495, "2020-04-16")  # starts on that end: joins (pad 0), ends 05-01
    cond(con, 3, 31967, "2020-06-01")  # ends 06-16
    cond(con, 3, 31967, "2020-06-17")  # the day after: apart, ends 07-02
    assert cohort(con, definition(10)) == [
        (1, "2020-03-01", "2020-03-25"),
        (1, "2020-05-01", "2020-05-17"),
        (2, "2020-12-25", "2020-12-31"),
        (3, "2020-04-01", "2020-05-01"),
        (3, "2020-06-01", "2020-06-16"),
        (3, "2020-06-17", "2020-07-02"),
    ]


def test_40_t2dm_or_history_excluded_descendants_do_not_count(con):
    person(con, 1, YEAR_2020)
    cond(con, 1, 201826, "2020-02-01", "2020-02-05")  # a descendant of 201820
    cond(con, 1, 40484649, "2020-04-01")  # a descendant of excluded 201254
    obs(con, 1, 40769338, "2020-08-01")
    person(con, 2, YEAR_2020)
    cond(con, 2, 201254, "2020-03-01")
    assert cohort(con, definition(40)) == [(1, "2020-02-01", "2020-02-05"), (1, "2020-08-01", "2020-08-02")]


# ---------------------------------------------------------------- first event, additional criteria


def test_957_first_t2dm_with_any_of_three_follow_up_rules(con):
    person(con, 1, TWO_YEARS)
    cond(con, 1, 201826, "2020-03-01")
    cond(con, 1, 201826, "2020-03-02")  # a second diagnosis from the day after the index
    person(con, 2, TWO_YEARS)
    cond(con, 2, 201826, "2020-03-01")
    cond(con, 2, 201826, "2020-03-01")  # the same day: not after the index
    drug(con, 2, 1503297, "2019-12-31", "2020-01-30")  # starts before the period
    drug(con, 2, 1503297, "2020-06-01", "2020-06-30")  # one drug in the period: 2 needed
    meas(con, 2, 3004410, "2020-02-22", 7.0, PERCENT)  # 8 days before the index: outside
    meas(con, 2, 3004410, "2020-04-01", 7.0, PERCENT)
    person(con, 3, TWO_YEARS)
    cond(con, 3, 201826, "2020-03-01")
    meas(con, 3, 3004410, "2020-02-23", 6.5, PERCENT)  # 7 days before, at the range's low end
    meas(con, 3, 3004410, "2020-05-01", 30.0, PERCENT)  # the range's high end
    person(con, 4, TWO_YEARS)
    cond(con, 4, 201826, "2020-03-01")
    drug(con, 4, 1503297, "2020-03-01", "2020-03-30")  # on the index day
    drug(con, 4, 1503297, "2020-09-01", "2020-09-30")
    person(con, 5, TWO_YEARS)
    cond(con, 5, 201826, "2018-06-01")  # the first diagnosis ever is not observed
    cond(con, 5, 201826, "2020-03-01")
    cond(con, 5, 201826, "2020-04-01")
    person(con, 6, TWO_YEARS)
    cond(con, 6, 201826, "2020-03-01")
    meas(con, 6, 3004410, "2020-03-01", 7.0, MMOL_PER_MOL)  # the wrong unit
    meas(con, 6, 3004410, "2020-03-05", 7.0, PERCENT)
    person(con, 7, TWO_YEARS)
    cond(con, 7, 201826, "2020-03-01")
    drug(con, 7, 1503297, "2020-01-15", "2020-01-20")  # before the index: the window starts at it
    drug(con, 7, 1503297, "2020-09-01", "2020-09-30")
    assert cohort(con, definition(957)) == [(pid, "2020-03-01", "2021-12-31") for pid in (1, 3, 4)]


def test_288_earliest_of_diagnosis_drug_or_lab_then_three_rules(con):
    person(con, 1, TWO_YEARS)
    drug(con, 1, 1503297, "2020-02-01", "2020-03-01")  # the index: a glucose-lowering drug
    cond(con, 1, 201826, "2020-06-01")
    person(con, 2, TWO_YEARS)
    meas(con, 2, 3004410, "2020-02-01", 7.0, PERCENT)  # the index
    cond(con, 2, 201826, "2021-02-01")  # 366 days later: rule 3 fails, and it is no index (First)
    person(con, 3, TWO_YEARS)
    meas(con, 3, 3004410, "2020-02-01", 50.0, MMOL_PER_MOL)
    cond(con, 3, 201826, "2021-01-31")  # 365 days later (2020 is a leap year)
    person(con, 4, TWO_YEARS)
    cond(con, 4, 201826, "2020-03-01")
    cond(con, 4, 40484649, "2015-01-01")  # type 1 before the index, unobserved: the rule ignores observation
    person(con, 5, TWO_YEARS)
    meas(con, 5, 3004410, "2020-01-15", 6.4, PERCENT)  # out of range: not an index
    cond(con, 5, 201826, "2020-03-01")
    person(con, 6, TWO_YEARS)
    cond(con, 6, 201826, "2020-03-01")
    cond(con, 6, 195771, "2021-06-01")  # secondary diabetes after the index: rule 2 holds
    person(con, 7, TWO_YEARS)
    cond(con, 7, 201826, "2020-03-01")
    cond(con, 7, 201826, "2020-05-01")
    person(con, 8, TWO_YEARS)
    cond(con, 8, 201826, "2020-03-01")
    cond(con, 8, 195771, "2020-03-01")  # on the index day: rule 2 fails
    assert cohort(con, definition(288)) == [
        (1, "2020-02-01", "2021-12-31"),
        (3, "2020-02-01", "2021-12-31"),
        (5, "2020-03-01", "2021-12-31"),
        (6, "2020-03-01", "2021-12-31"),
        (7, "2020-03-01", "2021-12-31"),
    ]


def test_788_breast_cancer_first_ever_after_365_days_of_observation(con):
    person(con, 1, [("2019-01-01", "2021-12-31")])
    cond(con, 1, 4112853, "2020-01-01")  # exactly 365 days after the period starts
    person(con, 2, [("2019-01-01", "2021-12-31")])
    cond(con, 2, 4112853, "2019-12-31")  # 364 days: too early, and it stays the first ever
    cond(con, 2, 4112853, "2020-06-01")
    person(con, 3, [("2018-01-01", "2018-06-30"), ("2019-02-01", "2021-12-31")])
    cond(con, 3, 4112853, "2020-02-01")  # 365 days into the second period
    person(con, 4, [("2019-01-01", "2021-12-31")])
    cond(con, 4, 36532266, "2020-06-01")  # an excluded concept
    person(con, 5, [("2019-01-01", "2021-12-31")])
    cond(con, 5, 36532266, "2019-03-01")  # not in the set, so not the first breast cancer
    cond(con, 5, 4112853, "2020-06-01")
    assert cohort(con, definition(788)) == [
        (1, "2020-01-01", "2021-12-31"),
        (3, "2020-02-01", "2021-12-31"),
        (5, "2020-06-01", "2021-12-31"),
    ]


# ---------------------------------------------------------------- constructs around them


def test_measurement_first_is_chosen_before_the_value_filter(con):
    expression = definition(288)
    measurement = expression["PrimaryCriteria"]["CriteriaList"][2]["Measurement"]
    expression["PrimaryCriteria"]["CriteriaList"] = [{"Measurement": {**measurement, "First": True}}]
    expression["InclusionRules"] = []
    person(con, 1, TWO_YEARS)
    meas(con, 1, 3004410, "2020-02-01", 6.0, PERCENT)  # the first HbA1c, out of range
    meas(con, 1, 3004410, "2020-05-01", 8.0, PERCENT)  # in range, but not the first
    person(con, 2, TWO_YEARS)
    meas(con, 2, 3004410, "2020-02-01", 8.0, PERCENT)
    assert cohort(con, expression) == [(2, "2020-02-01", "2021-12-31")]


def test_last_limits_keep_the_latest_event(con):
    person(con, 1, YEAR_2020)
    for day in ("2020-02-01", "2020-05-01", "2020-09-01"):
        cond(con, 1, 201826, day)
    expression = definition(503)
    expression["PrimaryCriteria"]["PrimaryCriteriaLimit"] = {"Type": "Last"}
    assert cohort(con, expression) == [(1, "2020-09-01", "2020-09-02")]
    expression = definition(503)
    expression["ExpressionLimit"] = {"Type": "Last"}
    assert cohort(con, expression) == [(1, "2020-09-01", "2020-09-02")]
    expression["AdditionalCriteria"] = {"Type": "ALL", "CriteriaList": []}  # now QualifiedLimit applies
    expression["QualifiedLimit"] = {"Type": "First"}
    expression["ExpressionLimit"] = {"Type": "All"}
    assert cohort(con, expression) == [(1, "2020-02-01", "2020-02-02")]


DRUGS = {
    "id": 1,
    "name": "glucose lowering drugs",
    "expression": {"items": [{"concept": {"CONCEPT_ID": 21600744}, "includeDescendants": True}]},
}


def test_custom_era_end_drug_exposures_joined_across_the_gap(con):
    expression = definition(503)
    expression["ConceptSets"].append(DRUGS)
    expression["EndStrategy"] = {"CustomEra": {"DrugCodesetId": 1, "GapDays": 30, "Offset": 7}}
    person(con, 1, YEAR_2020)
    cond(con, 1, 201826, "2020-02-01")
    drug(con, 1, 1503297, "2020-02-01", "2020-03-01")
    drug(con, 1, 1503297, "2020-03-20", "2020-04-19")  # within 30 days of 03-01: the same era
    drug(con, 1, 1503297, "2020-06-01", "2020-06-30")  # 43 days after 04-19: another era
    person(con, 2, YEAR_2020)
    cond(con, 2, 201826, "2020-05-01")  # no era holds the index: the period's end
    drug(con, 2, 1503297, "2020-02-01", "2020-03-01")  # its era ends 03-01 + 7
    person(con, 3, YEAR_2020)
    cond(con, 3, 201826, "2020-12-01")
    drug(con, 3, 1503297, "2020-12-01", "2020-12-31")  # era end 2021-01-07: the period ends first
    person(con, 4, YEAR_2020)
    cond(con, 4, 201826, "2020-02-01")
    add(
        con,
        "drug_exposure",
        person_id=4,
        drug_concept_id=0,
        drug_source_concept_id=1503297,  # Circe reads the source concept too
        drug_exposure_start_date=D("2020-02-01"),
        drug_exposure_end_date=D("2020-02-10"),
    )
    assert cohort(con, expression) == [
        (1, "2020-02-01", "2020-04-26"),
        (2, "2020-05-01", "2020-12-31"),
        (3, "2020-12-01", "2020-12-31"),
        (4, "2020-02-01", "2020-02-17"),
    ]


def test_censoring_event_ends_the_entry_from_the_index_day_on(con):
    expression = definition(503)
    expression["ConceptSets"].append(DRUGS)
    del expression["EndStrategy"]  # the end of the observation period
    expression["CensoringCriteria"] = [{"DrugExposure": {"CodesetId": 1}}]
    person(con, 1, YEAR_2020)
    cond(con, 1, 201826, "2020-03-01")
    drug(con, 1, 1503297, "2020-02-01", "2020-02-10")  # before the index: does not censor
    drug(con, 1, 1503297, "2020-06-01", "2020-06-10")
    drug(con, 1, 1503297, "2020-08-01", "2020-08-10")  # the first one after the index counts
    person(con, 2, YEAR_2020)
    cond(con, 2, 201826, "2020-03-01")
    drug(con, 2, 1503297, "2020-03-01", "2020-03-10")  # on the index day: a one-day entry
    person(con, 3, YEAR_2020)
    cond(con, 3, 201826, "2020-03-01")
    drug(con, 3, 1503297, "2021-02-01", "2021-02-10")  # after the period
    assert cohort(con, expression) == [
        (1, "2020-03-01", "2020-06-01"),
        (2, "2020-03-01", "2020-03-01"),
        (3, "2020-03-01", "2020-12-31"),
    ]


def test_censor_window_clamps_entries_and_drops_those_outside(con):
    expression = definition(503)
    expression["CensorWindow"] = {"StartDate": "2020-03-01", "EndDate": "2020-06-30"}
    for pid, start, end in [
        (1, "2020-02-20", "2020-03-10"),
        (2, "2020-06-25", "2020-07-10"),
        (3, "2020-01-01", "2020-01-31"),
        (4, "2020-04-01", "2020-04-05"),
    ]:
        person(con, pid, YEAR_2020)
        cond(con, pid, 201826, start, end)
    assert cohort(con, expression) == [
        (1, "2020-03-01", "2020-03-10"),
        (2, "2020-06-25", "2020-06-30"),
        (4, "2020-04-01", "2020-04-05"),
    ]


@pytest.mark.parametrize(
    "cohort_id, change, where, construct",
    [
        (
            957,
            lambda e: e.update(CensoringCriteria=[{"DeviceExposure": {"CodesetId": 4}}]),
            "CensoringCriteria[0]",
            "DeviceExposure",
        ),
        (
            503,
            lambda e: e.update(EndStrategy={"CustomEra": {"DrugCodesetId": 0, "DaysSupplyOverride": 30}}),
            "EndStrategy.CustomEra",
            "DaysSupplyOverride",
        ),
        (
            288,
            lambda e: e["InclusionRules"][2]["expression"]["CriteriaList"][0].update(RestrictVisit=True),
            "InclusionRules[2](has at least one diagnosis of T2DM on or within 365d of index date)"
            ".CriteriaList[0]",
            "RestrictVisit",
        ),
        (
            957,
            lambda e: e["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"].update(
                ConditionType=[{"CONCEPT_ID": 32020}]
            ),
            "PrimaryCriteria.CriteriaList[0].ConditionOccurrence",
            "ConditionType",
        ),
    ],
)
def test_a_construct_outside_the_subset_is_refused_naming_its_field(cohort_id, change, where, construct):
    expression = copy.deepcopy(definition(cohort_id))
    change(expression)
    with pytest.raises(UnsupportedCohortConstruct) as err:
        compile_cohort(expression)
    assert (err.value.where, err.value.construct) == (where, construct)
    assert construct in str(err.value)
