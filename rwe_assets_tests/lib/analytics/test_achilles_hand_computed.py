"""Achilles analyses of each kind (a count, a count by stratum, a count by concept, distributions)
on the fixture CDM plus three persons, with a minimum cell count of 3, against values computed by
hand from Achilles's definitions: ages are the calendar year minus the year of birth; a
distribution's percentile is the smallest value whose cumulative count reaches that share of the
values; its standard deviation the sample one."""

from __future__ import annotations

import datetime as dt
import statistics

import duckdb
import pytest

from rwe_assets.lib.analytics.achilles import run_achilles
from rwe_assets_tests.lib.analytics.fixture_cdm import (
    EHR,
    FEMALE,
    HYPERTENSION,
    MALE,
    T2DM,
    build_fixture_cdm,
)
from rwe_assets_tests.lib.analytics.test_achilles import counts, dist

# added to the fixture (P1 male 1980, P2 female 1990, P3 female 1990): person, gender, birth year,
# first observation year (its period covers that year), type 2 diabetes on 1 March of it
ADDED = [(4, MALE, 1950, 2020), (5, FEMALE, 2000, 2020), (6, MALE, 1981, 2021)]


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        build_fixture_cdm(connection)
        for pid, gender, born, year in ADDED:
            connection.execute(
                "INSERT INTO cdm.person (person_id, gender_concept_id, year_of_birth, race_concept_id, "
                "ethnicity_concept_id) VALUES (?, ?, ?, 0, 0)",
                [pid, gender, born],
            )
            connection.execute(
                "INSERT INTO cdm.observation_period VALUES (?, ?, ?, ?, ?)",
                [10 + pid, pid, dt.date(year, 1, 1), dt.date(year, 12, 31), EHR],
            )
            connection.execute(
                "INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
                "condition_start_date, condition_type_concept_id, condition_source_concept_id) VALUES (?, ?, ?, ?, ?, 0)",
                [10 + pid, pid, T2DM, dt.date(year, 3, 1), EHR],
            )
        run_achilles(connection, min_cell_count=3, today=dt.date(2026, 12, 6))
        yield connection


def test_person_counts_by_stratum(con):
    assert counts(con, 1) == {(): 6}
    assert counts(con, 2) == {(str(MALE),): 3, (str(FEMALE),): 3}
    # years of birth 1980, 1990 (2 persons), 1950, 2000, 1981: every cell below 3, all removed
    assert counts(con, 3) == {}


def test_persons_by_concept_with_the_small_cell_removed(con):
    # type 2 diabetes: P1, P2, P4, P5, P6; hypertension: P1 and P3, a cell of 2
    assert counts(con, 400) == {(str(T2DM),): 5}
    assert counts(con, 401) == {(str(T2DM),): 7}  # records: P1 2, P2 2 (one unobserved), P4-P6 1 each
    suppressed = con.execute(
        "SELECT suppressed_rows FROM results.achilles_suppression WHERE analysis_id = 400"
    ).fetchone()
    assert suppressed == (1,)


def test_age_at_first_observation_distribution(con):
    ages = [30, 21, 22, 70, 20, 40]  # 2010-1980, 2011-1990, 2012-1990, 2020-1950, 2020-2000, 2021-1981
    n, lo, hi, mean, median, p10, p25, p75, p90 = dist(con, 103)[()]
    # sorted 20 21 22 30 40 70: cumulative counts reach 0.6, 1.5, 3, 4.5, 5.4 at 20, 21, 22, 40, 70
    assert (n, lo, hi, median, p10, p25, p75, p90) == (6, 20, 70, 22, 20, 21, 40, 70)
    assert mean == pytest.approx(statistics.fmean(ages))
    stdev = con.execute(
        "SELECT stdev_value FROM results.achilles_results_dist WHERE analysis_id = 103"
    ).fetchone()[0]
    assert stdev == pytest.approx(statistics.stdev(ages))


def test_age_at_first_occurrence_by_concept_and_gender(con):
    # type 2 diabetes, men: P1 2010-1980 = 30, P4 2020-1950 = 70, P6 2021-1981 = 40; the women
    # (P2 21, P5 20) and hypertension (P1, P3) are cells of 1 or 2 and removed
    assert dist(con, 406) == {(str(T2DM), str(MALE)): (3, 30, 70, pytest.approx(140 / 3), 40, 30, 30, 70, 70)}
    assert (str(HYPERTENSION), str(MALE)) not in dist(con, 406)
