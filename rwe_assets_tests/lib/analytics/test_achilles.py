"""Achilles characterization against counts computed by hand on the three-person fixture CDM."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources

import duckdb
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.analytics import achilles
from rwe_assets.lib.analytics.achilles import analysis_details, build_analyses, run_achilles
from rwe_assets.lib.analytics.disclosure import DEFAULT_MIN_CELL_COUNT, ENV_VAR, min_cell_count, shown
from rwe_assets_tests.lib.analytics.fixture_cdm import (
    FEMALE,
    HYPERTENSION,
    MALE,
    MMHG,
    SYSTOLIC,
    T2DM,
    build_fixture_cdm,
)

TODAY = dt.date(2026, 12, 6)
ACHILLES_DIR = resources.files("rwe_assets.lib") / "sql" / "analytics" / "achilles"
SCHEMA_TYPE = {"int": "INTEGER", "bigint": "BIGINT", "varchar(255)": "VARCHAR", "float": "DOUBLE"}


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        build_fixture_cdm(connection)
        yield connection


@pytest.fixture
def unsuppressed(con):
    """The fixture characterized with every cell shown (minimum 1)."""
    run = run_achilles(con, min_cell_count=1, today=TODAY)
    return con, run


def counts(con, analysis_id: int) -> dict[tuple, int]:
    rows = con.execute(
        "SELECT stratum_1, stratum_2, stratum_3, stratum_4, stratum_5, count_value FROM results.achilles_results "
        "WHERE analysis_id = ?",
        [analysis_id],
    ).fetchall()
    return {tuple(s for s in row[:5] if s is not None): row[5] for row in rows}


def dist(con, analysis_id: int) -> dict[tuple, tuple]:
    rows = con.execute(
        "SELECT stratum_1, stratum_2, count_value, min_value, max_value, avg_value, median_value, p10_value, "
        "p25_value, p75_value, p90_value FROM results.achilles_results_dist WHERE analysis_id = ?",
        [analysis_id],
    ).fetchall()
    return {tuple(s for s in row[:2] if s is not None): tuple(row[2:]) for row in rows}


def test_person_counts(unsuppressed):
    con, _ = unsuppressed
    assert counts(con, 0) == {("fixture", achilles.ACHILLES_VERSION, "2026-12-06"): 3}
    assert counts(con, 1) == {(): 3}
    assert counts(con, 2) == {(str(MALE),): 1, (str(FEMALE),): 2}
    assert counts(con, 3) == {("1980",): 1, ("1990",): 2}
    assert counts(con, 10) == {("1980", str(MALE)): 1, ("1990", str(FEMALE)): 2}
    assert counts(con, 11) == {("1980", str(MALE)): 1, ("1990", str(FEMALE)): 1}  # P2 died


def test_observation_periods(unsuppressed):
    con, _ = unsuppressed
    # age at first period: P1 2010-1980, P2 2011-1990, P3 2012-1990
    assert counts(con, 101) == {("30",): 1, ("21",): 1, ("22",): 1}
    n, lo, hi, mean, median, p10, p25, p75, p90 = dist(con, 103)[()]
    assert (n, lo, hi, median, p10, p25, p75, p90) == (3, 21, 30, 22, 21, 21, 30, 30)
    assert mean == pytest.approx(73 / 3)
    # first-period lengths in days: 1095 (P1), 199 (P2), 30 (P3); in 30-day steps 36, 6, 1
    assert dist(con, 105)[()][:3] == (3, 30, 1095)
    assert counts(con, 108) == {("36",): 1, ("6",): 1, ("1",): 1}
    assert counts(con, 109) == {("2010",): 1, ("2011",): 1, ("2012",): 1}  # only P1 covers whole years
    assert counts(con, 113) == {("1",): 2, ("2",): 1}
    assert counts(con, 110)[("201106",)] == 1  # P2 starts on the 15th
    assert counts(con, 110)[("201201",)] == 2  # P1 and P3
    assert counts(con, 117)[("201106",)] == 2  # any day: P1 and P2
    assert counts(con, 117)[("201202",)] == 1  # P2 has a gap, P3 ended
    assert ("201302",) not in counts(con, 117)


def test_conditions(unsuppressed):
    con, _ = unsuppressed
    assert counts(con, 400) == {(str(T2DM),): 2, (str(HYPERTENSION),): 2}
    assert counts(con, 401) == {(str(T2DM),): 4, (str(HYPERTENSION),): 2}
    assert counts(con, 402)[(str(T2DM), "201401")] == 1
    assert counts(con, 410) == {(): 1}  # P2's record of 2014
    assert counts(con, 420)[("201003",)] == 1
    # distinct concepts per person, within observation: P1 2, P2 1, P3 1
    assert dist(con, 403)[()][:3] == (3, 1, 2)
    # age at first occurrence by gender: T2DM at 30 (P1) and 21 (P2)
    assert dist(con, 406)[(str(T2DM), str(MALE))][:3] == (1, 30, 30)
    assert dist(con, 406)[(str(T2DM), str(FEMALE))][:3] == (1, 21, 21)
    assert counts(con, 404)[(str(T2DM), "2011", str(FEMALE), "2")] == 1


def test_other_domains_and_density(unsuppressed):
    con, _ = unsuppressed
    assert counts(con, 200) == {("9202",): 1}
    assert counts(con, 700) == {("1503297",): 1}
    assert dist(con, 715)[("1503297",)][:3] == (1, 30, 30)
    assert counts(con, 1800) == {(str(SYSTOLIC),): 1}
    assert dist(con, 1815)[(str(SYSTOLIC), str(MMHG))][:3] == (1, 120, 120)
    assert counts(con, 1818) == {(str(SYSTOLIC), str(MMHG), "Within Range"): 1}
    assert counts(con, 500) == {("0",): 1}
    assert counts(con, 502) == {("201301",): 1}
    assert dist(con, 506)[(str(FEMALE),)][:3] == (1, 23, 23)
    assert counts(con, 2000) == {(): 1}  # a diagnosis and a drug: P1 only
    assert counts(con, 2003) == {(): 1}


def test_columns_and_types_equal_the_achilles_schema_files(unsuppressed):
    con, _ = unsuppressed
    for table in ("achilles_results", "achilles_results_dist"):
        with (ACHILLES_DIR / f"schema_{table}.csv").open() as handle:
            expected = [(r["FIELD_NAME"], SCHEMA_TYPE[r["FIELD_TYPE"]]) for r in csv.DictReader(handle)]
        actual = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'results' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert actual == expected
    assert con.execute("SELECT count(*) FROM results.achilles_analysis").fetchone()[0] == len(
        analysis_details()
    )


def test_ids_are_standard_and_strata_count_matches_the_catalogue():
    details = analysis_details()
    for analysis in build_analyses():
        detail = details[analysis.analysis_id]
        assert analysis.dist == (detail.distribution == 1), analysis.analysis_id
        named = sum(1 for name in detail.strata_names if name)
        # the catalogue leaves some strata unnamed (1815-1818 by concept and unit; 0's name and date)
        assert analysis.strata >= named, analysis.analysis_id


def test_small_cells_are_removed_and_counted(con):
    run = run_achilles(con, min_cell_count=DEFAULT_MIN_CELL_COUNT, today=TODAY)
    # the fixture has 3 persons: a cell of 3 is below 5, so nothing about them is shared
    assert counts(con, 1) == {}
    assert (
        con.execute(
            "SELECT count(*) FROM results.achilles_results WHERE count_value BETWEEN 1 AND 4"
        ).fetchone()[0]
        == 0
    )
    assert (
        con.execute(
            "SELECT count(*) FROM results.achilles_results_dist WHERE count_value BETWEEN 1 AND 4"
        ).fetchone()[0]
        == 0
    )
    suppressed = dict(
        con.execute(
            "SELECT analysis_id, suppressed_rows FROM results.achilles_suppression WHERE result_table = 'achilles_results'"
        ).fetchall()
    )
    assert suppressed[1] == 1 and suppressed[2] == 2
    assert run.suppressed_results_rows == sum(suppressed.values())
    run_achilles(con, min_cell_count=3, today=TODAY)  # a cell of 3 meets a minimum of 3
    assert counts(con, 1) == {(): 3}


def test_min_cell_count_setting(monkeypatch):
    assert min_cell_count({}) == 5
    assert min_cell_count({ENV_VAR: "11"}) == 11
    for bad in ("0", "five", "-3"):
        with pytest.raises(ConfigError, match=ENV_VAR):
            min_cell_count({ENV_VAR: bad})

    class WithField:
        min_cell_count = 20

    assert min_cell_count({ENV_VAR: "11"}, settings=WithField()) == 20
    assert shown(0, 5) and shown(5, 5) and not shown(4, 5)


def test_missing_tables_skip_their_analyses_only():
    with duckdb.connect() as con:
        build_fixture_cdm(con)
        con.execute("DROP TABLE cdm.note")
        run = run_achilles(con, min_cell_count=1, today=TODAY)
        assert set(run.skipped) == {2200, 2201}
        assert counts(con, 1) == {(): 3}


def test_overlapping_periods_count_a_person_once():
    """Periods should not overlap (DQD checks it), but if they do, a person is one person per month."""
    with duckdb.connect() as con:
        build_fixture_cdm(con)
        con.execute(
            "INSERT INTO cdm.observation_period VALUES (5, 3, DATE '2012-01-15', DATE '2012-02-15', 32817)"
        )
        run_achilles(con, min_cell_count=1, analysis_ids=[110, 116, 117], today=TODAY)
        assert counts(con, 117)[("201201",)] == 2  # P1 and P3, whose two periods overlap in January
        assert counts(con, 117)[("201202",)] == 2  # P1 and P3 (P2 is in a gap)
        assert counts(con, 110)[("201201",)] == 2
        assert counts(con, 116)[("2012", str(FEMALE), "2")] == 2  # P2 and P3, aged 22 in 2012


def test_providers_and_care_sites(con):
    """Three providers (two of one specialty), three care sites (one without a place of service),
    four visits: P1's with provider 1 at site 1 discharged home, P2's inpatient with provider 3 at the
    site without a place, P3's with provider 2 at site 2, and one with ids that match nothing."""
    internal, family, home, outpatient_hospital = 38004456, 38004446, 8536, 8756
    con.execute(
        "INSERT INTO cdm.provider (provider_id, specialty_concept_id, specialty_source_concept_id) "
        "VALUES (1, ?, 0), (2, ?, 0), (3, ?, 123)",
        [family, family, internal],
    )
    con.execute(
        "INSERT INTO cdm.care_site (care_site_id, place_of_service_concept_id) VALUES (1, ?), (2, ?), (3, NULL)",
        [outpatient_hospital, outpatient_hospital],
    )
    con.execute("UPDATE cdm.person SET care_site_id = CASE person_id WHEN 1 THEN 1 WHEN 2 THEN 3 ELSE 2 END")
    con.execute(
        "UPDATE cdm.visit_occurrence SET provider_id = 1, care_site_id = 1, discharged_to_concept_id = ?",
        [home],
    )
    con.execute(
        "INSERT INTO cdm.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id, visit_start_date, "
        "visit_end_date, visit_type_concept_id, provider_id, care_site_id, discharged_to_concept_id) VALUES "
        "(2, 2, 9201, DATE '2011-07-01', DATE '2011-07-03', 32817, 3, 3, 0), "
        "(3, 3, 9202, DATE '2012-01-10', DATE '2012-01-10', 32817, 2, 2, NULL), "
        "(4, 1, 9202, DATE '2012-02-10', DATE '2012-02-10', 32817, 99, 99, NULL)"
    )
    run_achilles(con, min_cell_count=1, today=TODAY)
    assert counts(con, 300) == {(): 3}
    assert counts(con, 301) == {(str(family),): 2, (str(internal),): 1}
    assert counts(con, 303) == {(str(family), "9202"): 2, (str(internal), "9201"): 1}  # visit 4: no provider
    assert counts(con, 325) == {("0",): 2, ("123",): 1}
    assert counts(con, 1200) == {(str(outpatient_hospital),): 2}  # P2's site has no place of service
    assert counts(con, 1201) == {(str(outpatient_hospital),): 2}
    assert counts(con, 1202) == {(str(outpatient_hospital),): 2}
    assert counts(con, 1203) == {(str(home),): 1}  # 0 and NULL are not a discharge
