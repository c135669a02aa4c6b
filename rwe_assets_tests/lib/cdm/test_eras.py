"""Era and observation-period builders: exact rows for hand-built cases around the 30-day window, the
ingredient roll-up, gap_days, dose eras, event-span and enrollment observation periods, idempotency and
transactions, and properties of drug eras for random exposure intervals."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm import eras
from rwe_assets.lib.cdm.eras import (
    EraResult,
    build_condition_era,
    build_dose_era,
    build_drug_era,
    build_observation_period,
    build_observation_period_with_enrollment,
)
from rwe_assets.lib.cdm_spec import cdm_ddl

D0 = dt.date(2020, 1, 1)
EHR = 32817
ENROLLMENT_TYPE = 99001  # any Type Concept id the caller chooses for enrollment-based periods
MG = 8576

# Vocabulary: two RxNorm ingredients, one RxNorm Extension ingredient (not an era ingredient), products.
ING_A, ING_B, ING_EXT = 1001, 1002, 1003
A_500, A_325, B_10, EXT_PRODUCT, B_POINT_1 = 2001, 2002, 2003, 2004, 2005
CONDITION = 3001


def d(days: int) -> dt.date:
    return D0 + dt.timedelta(days=days)


def quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


def new_cdm(schema: str = "cdm") -> duckdb.DuckDBPyConnection:
    """A CDM with the test vocabulary, and sequences for event ids."""
    con = duckdb.connect()
    for statement in cdm_ddl(schema):
        con.execute(statement)
    con.execute("CREATE SEQUENCE drug_ids")
    con.execute("CREATE SEQUENCE condition_ids")
    schema = quoted(schema)
    # CDM v5.4 requires drug_exposure_end_date; relaxed here to exercise the OHDSI end-date fallbacks.
    con.execute(f"ALTER TABLE {schema}.drug_exposure ALTER COLUMN drug_exposure_end_date DROP NOT NULL")
    concepts = [
        (ING_A, "ingredient a", "RxNorm", "Ingredient", "S"),
        (ING_B, "ingredient b", "RxNorm", "Ingredient", "S"),
        (ING_EXT, "extension ingredient", "RxNorm Extension", "Ingredient", "S"),
        (A_500, "a 500 mg tablet", "RxNorm", "Clinical Drug", "S"),
        (A_325, "a 325 mg tablet", "RxNorm", "Clinical Drug", "S"),
        (B_10, "b 10 mg tablet", "RxNorm", "Clinical Drug", "S"),
        (EXT_PRODUCT, "extension product", "RxNorm Extension", "Clinical Drug", "S"),
        (B_POINT_1, "b 0.1 mg tablet", "RxNorm", "Clinical Drug", "S"),
    ]
    con.executemany(
        f"""INSERT INTO {schema}.concept VALUES
            (?, ?, 'Drug', ?, ?, ?, 'code', DATE '2000-01-01', DATE '2099-12-31', NULL)""",
        concepts,
    )
    # ING_B has no (X, X, 0) row: an exposure recorded at ingredient level must still map to itself.
    ancestors = [
        (ING_A, ING_A, 0),
        (ING_A, A_500, 1),
        (ING_A, A_325, 1),
        (ING_B, B_10, 1),
        (ING_B, B_POINT_1, 1),
        (ING_EXT, EXT_PRODUCT, 1),
    ]
    con.executemany(
        f"INSERT INTO {schema}.concept_ancestor VALUES (?, ?, ?, ?)", [(a, b, n, n) for a, b, n in ancestors]
    )
    strengths = [(A_500, ING_A, 500.0), (A_325, ING_A, 325.0), (B_10, ING_B, 10.0), (B_POINT_1, ING_B, 0.1)]
    con.executemany(
        f"""INSERT INTO {schema}.drug_strength (drug_concept_id, ingredient_concept_id, amount_value,
            amount_unit_concept_id, valid_start_date, valid_end_date) VALUES (?, ?, ?, {MG}, DATE '2000-01-01', DATE '2099-12-31')""",
        strengths,
    )
    return con


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = new_cdm()
    yield connection
    connection.close()


def add_drugs(con, rows: Sequence[tuple], schema: str = "cdm") -> None:
    """rows: (person, drug concept, start, end or None, days_supply or None[, quantity])."""
    con.executemany(
        f"""INSERT INTO {quoted(schema)}.drug_exposure (drug_exposure_id, person_id, drug_concept_id,
            drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id, days_supply, quantity)
            VALUES (nextval('drug_ids'), ?, ?, ?, ?, {EHR}, ?, ?)""",
        [(*row, None) if len(row) == 5 else row for row in rows],
    )


def add_conditions(con, rows: Sequence[tuple]) -> None:
    """rows: (person, condition concept, start, end or None)."""
    con.executemany(
        f"""INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id,
            condition_start_date, condition_end_date, condition_type_concept_id)
            VALUES (nextval('condition_ids'), ?, ?, ?, ?, {EHR})""",
        rows,
    )


def rows(con, table: str, order: str = "1") -> list[tuple]:
    return con.execute(f"SELECT * FROM cdm.{table} ORDER BY {order}").fetchall()


# --- condition_era ------------------------------------------------------------------------------


def test_condition_era_window_boundaries_overlaps_and_concept_zero(con):
    add_conditions(
        con,
        [
            (1, CONDITION, d(0), d(10)),
            (1, CONDITION, d(40), None),  # 30 days after d10: merges; no end date -> ends d41
            (1, CONDITION, d(72), d(80)),  # 31 days after d41: new era
            (1, CONDITION, d(72), d(75)),  # same start as the previous one
            (1, CONDITION, d(100), d(200)),  # 20 days after d80, and overlaps the next
            (1, CONDITION, d(109), d(115)),  # inside d100-d200
            (1, 0, d(0), d(500)),  # unmapped: never an era
            (2, CONDITION, d(0), d(5)),
            (2, CONDITION, d(34), d(35)),  # 29 days after d5: merges
        ],
    )
    assert build_condition_era(con) == 3
    assert rows(con, "condition_era") == [
        (1, 1, CONDITION, d(0), d(41), 2),
        (2, 1, CONDITION, d(72), d(200), 4),
        (3, 2, CONDITION, d(0), d(35), 2),
    ]


def test_condition_era_end_before_start_is_raised_to_start(con):
    # raised to d10, the next start is 30 days later and merges (from d5 it would be 35 days)
    add_conditions(con, [(1, CONDITION, d(10), d(5)), (1, CONDITION, d(40), d(40))])
    assert build_condition_era(con) == 1
    assert rows(con, "condition_era") == [(1, 1, CONDITION, d(10), d(40), 2)]


def test_persistence_window_is_a_parameter(con):
    add_conditions(con, [(1, CONDITION, d(0), d(10)), (1, CONDITION, d(20), d(30))])
    assert build_condition_era(con, persistence_window=0) == 2
    assert build_condition_era(con, persistence_window=10) == 1
    with pytest.raises(ConfigError, match="persistence_window"):
        build_condition_era(con, persistence_window=-1)


# --- drug_era -----------------------------------------------------------------------------------


def test_drug_era_rules(con):
    add_drugs(
        con,
        [
            # person 1, ingredient A through two products
            (1, A_500, d(0), d(10), None),
            (1, A_325, d(40), d(50), None),  # gap 30: merges across products
            (1, A_500, d(81), d(90), None),  # gap 31: new era
            (1, A_500, d(85), d(100), None),  # overlaps the previous exposure
            (1, A_500, d(129), None, 10),  # gap 29: merges; no end date -> start + days_supply = d139
            (1, A_325, d(200), None, None),  # no end, no days_supply -> start + 1 day; gap 61: new era
            # person 1, ingredient B recorded once at ingredient level (no self row in concept_ancestor)
            (1, ING_B, d(0), d(5), None),
            (1, B_10, d(3), d(20), None),
            # person 2
            (2, B_10, d(10), None, 0),  # days_supply 0 counts as missing -> d11
            (2, EXT_PRODUCT, d(10), d(20), None),  # only an RxNorm Extension ingredient: excluded
            (2, 0, d(10), d(20), None),  # unmapped: excluded
        ],
    )
    assert build_drug_era(con) == EraResult(rows=5, excluded=2)
    assert rows(con, "drug_era") == [
        # era length - days covered: 50 - (10 + 10) = 30
        (1, 1, ING_A, d(0), d(50), 2, 30),
        # covered: [81, 100) = 19 days, [129, 139) = 10 days; length 58
        (2, 1, ING_A, d(81), d(139), 3, 29),
        (3, 1, ING_A, d(200), d(201), 1, 0),
        (4, 1, ING_B, d(0), d(20), 2, 0),
        (5, 2, ING_B, d(10), d(11), 1, 0),
    ]


def test_drug_era_combination_product_counts_towards_each_ingredient(con):
    con.execute(
        """INSERT INTO cdm.concept VALUES (2099, 'a + b', 'Drug', 'RxNorm', 'Clinical Drug', 'S', 'x',
           DATE '2000-01-01', DATE '2099-12-31', NULL)"""
    )
    con.execute("INSERT INTO cdm.concept_ancestor VALUES (1001, 2099, 1, 1), (1002, 2099, 1, 1)")
    add_drugs(con, [(1, 2099, d(0), d(30), None)])
    assert build_drug_era(con) == EraResult(rows=2, excluded=0)
    assert rows(con, "drug_era") == [(1, 1, ING_A, d(0), d(30), 1, 0), (2, 1, ING_B, d(0), d(30), 1, 0)]


def test_drug_era_ingredient_must_be_standard(con):
    con.execute("UPDATE cdm.concept SET standard_concept = NULL WHERE concept_id = 1001")
    add_drugs(con, [(1, A_500, d(0), d(30), None), (1, B_10, d(0), d(30), None)])
    assert build_drug_era(con) == EraResult(rows=1, excluded=1)
    assert [r[2] for r in rows(con, "drug_era")] == [ING_B]


# --- dose_era -----------------------------------------------------------------------------------


def test_dose_era_two_doses_and_exposures_that_do_not_contribute(con):
    add_drugs(
        con,
        [
            # (person, drug, start, end, days_supply, quantity)
            (3, A_500, d(0), d(30), 30, 60.0),  # 500 mg * 60 / 30 days = 1000 mg/day
            (3, A_500, d(50), None, 30, 60.0),  # 1000 mg/day again, gap 20: merges; ends d80
            (3, A_325, d(80), d(110), 30, 30.0),  # 325 mg/day: its own era, overlapping in time
            (3, A_500, d(150), d(180), 30, 60.0),  # 1000 mg/day after a 70-day gap: new era
            (3, B_10, d(0), d(30), 30, None),  # no quantity
            (3, A_500, d(0), d(30), None, 60.0),  # no days_supply
            (3, A_500, d(0), d(30), 30, 0.0),  # quantity 0
            (3, EXT_PRODUCT, d(0), d(30), 30, 30.0),  # no drug_strength row
            # 0.1 mg * 3 / 1 = 0.30000000000000004 and 10 mg * 0.03 / 1: one dose 0.3 after rounding
            (4, B_POINT_1, d(0), d(1), 1, 3.0),
            (4, B_10, d(10), d(11), 1, 0.03),
        ],
    )
    assert build_dose_era(con) == 4
    assert rows(con, "dose_era") == [
        (1, 3, ING_A, MG, 1000.0, d(0), d(80)),
        (2, 3, ING_A, MG, 325.0, d(80), d(110)),
        (3, 3, ING_A, MG, 1000.0, d(150), d(180)),
        (4, 4, ING_B, MG, 0.3, d(0), d(11)),
    ]


# --- observation_period -------------------------------------------------------------------------


def add_events(con) -> None:
    """Person 1 has events in every table, person 2 only a death, person 4 an end before its start."""
    con.execute(f"""INSERT INTO cdm.visit_occurrence (visit_occurrence_id, person_id, visit_concept_id,
        visit_start_date, visit_end_date, visit_type_concept_id) VALUES (1, 1, 9201, '{d(10)}', '{d(12)}', {EHR})""")
    add_conditions(con, [(1, CONDITION, d(5), None), (4, CONDITION, d(10), d(8))])
    add_drugs(con, [(1, A_500, d(20), d(50), None)])
    con.execute(f"""INSERT INTO cdm.procedure_occurrence (procedure_occurrence_id, person_id, procedure_concept_id,
        procedure_date, procedure_type_concept_id) VALUES (1, 1, 4000, '{d(3)}', {EHR})""")
    con.execute(f"""INSERT INTO cdm.device_exposure (device_exposure_id, person_id, device_concept_id,
        device_exposure_start_date, device_exposure_end_date, device_type_concept_id)
        VALUES (1, 1, 4100, '{d(60)}', '{d(70)}', {EHR})""")
    con.execute(f"""INSERT INTO cdm.measurement (measurement_id, person_id, measurement_concept_id,
        measurement_date, measurement_type_concept_id) VALUES (1, 1, 4200, '{d(-5)}', {EHR})""")
    con.execute(f"""INSERT INTO cdm.observation (observation_id, person_id, observation_concept_id,
        observation_date, observation_type_concept_id) VALUES (1, 1, 4300, '{d(100)}', {EHR})""")
    con.execute(f"INSERT INTO cdm.death (person_id, death_date) VALUES (2, '{d(200)}')")


def test_observation_period_spans_all_event_tables(con):
    add_events(con)
    assert build_observation_period(con) == 3
    assert rows(con, "observation_period") == [
        (1, 1, d(-5), d(100), EHR),
        (2, 2, d(200), d(200), EHR),  # death only: one day
        (3, 4, d(8), d(10), EHR),  # end before start: both dates count
    ]
    assert build_observation_period(con, period_type_concept_id=32880) == 3
    assert {r[4] for r in rows(con, "observation_period")} == {32880}


def test_observation_period_ends_at_death(con):
    add_events(con)
    con.execute(
        "INSERT INTO cdm.death (person_id, death_date, death_type_concept_id) VALUES (1, ?, ?)", [d(50), EHR]
    )
    build_observation_period(con)
    # person 1 has events until d100, but died at d50: later events do not extend observation
    assert rows(con, "observation_period")[0] == (1, 1, d(-5), d(50), EHR)


def add_enrollment(con, spans: Sequence[tuple[int, int, int]], table: str = "cdm.payer_plan_period") -> None:
    con.executemany(
        f"""INSERT INTO {table} (payer_plan_period_id, person_id, payer_plan_period_start_date,
            payer_plan_period_end_date) VALUES (?, ?, ?, ?)""",
        [(i, person, d(start), d(end)) for i, (person, start, end) in enumerate(spans, start=1)],
    )


ENROLLMENT = [
    (1, 0, 30),
    (1, 31, 61),  # contiguous
    (1, 50, 90),  # overlapping
    (1, 123, 150),  # 33 days after d90: new period
    (1, 182, 200),  # 32 days after d150: same period
    (3, 0, 10),  # enrolled, no events
]


def test_observation_period_with_enrollment(con):
    add_events(con)  # person 1 events at d-5 (measurement), d3, d5, d10, d20, d60, d100: outside: d-5, d100
    add_drugs(con, [(1, A_500, d(300), d(310), None)])  # outside: after the last span
    add_enrollment(con, ENROLLMENT)
    result = build_observation_period_with_enrollment(
        con, "cdm", "payer_plan_period", enrollment_period_type_concept_id=ENROLLMENT_TYPE
    )
    assert result == EraResult(rows=5, excluded=3)
    assert rows(con, "observation_period") == [
        (1, 1, d(0), d(90), ENROLLMENT_TYPE),
        (2, 1, d(123), d(200), ENROLLMENT_TYPE),
        (3, 2, d(200), d(200), EHR),  # not enrolled: event span
        (4, 3, d(0), d(10), ENROLLMENT_TYPE),
        (5, 4, d(8), d(10), EHR),
    ]


def test_observation_period_with_enrollment_defaults_and_other_schema(con):
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.enrollment AS SELECT * FROM cdm.payer_plan_period")
    add_enrollment(con, [(1, 0, 10), (1, 44, 50)], table="staging.enrollment")
    assert build_observation_period_with_enrollment(con, enrollment_table="staging.enrollment") == EraResult(
        2, 0
    )
    assert rows(con, "observation_period") == [(1, 1, d(0), d(10), EHR), (2, 1, d(44), d(50), EHR)]
    with pytest.raises(ConfigError, match="enrollment_table"):
        build_observation_period_with_enrollment(con, enrollment_table="a.b.c")


# --- replacing rows: idempotency, transactions, quoting -----------------------------------------


def all_derived(con) -> dict[str, list[tuple]]:
    return {t: rows(con, t) for t in ("condition_era", "drug_era", "dose_era", "observation_period")}


def test_builders_are_idempotent_and_replace_stale_rows(con):
    add_events(con)
    add_drugs(con, [(1, A_500, d(0), d(30), 30, 60.0), (1, A_500, d(100), d(130), 30, 60.0)])
    add_conditions(con, [(1, CONDITION, d(300), d(301))])

    def build_all():
        return (
            build_condition_era(con),
            build_drug_era(con),
            build_dose_era(con),
            build_observation_period(con),
        )

    first = build_all()
    first_rows = all_derived(con)
    assert first == build_all()
    assert all_derived(con) == first_rows

    con.execute("DELETE FROM cdm.drug_exposure WHERE drug_exposure_start_date = ?", [d(100)])
    con.execute("DELETE FROM cdm.condition_occurrence")
    assert build_drug_era(con).rows == first[1].rows - 1
    assert build_condition_era(con) == 0
    assert rows(con, "condition_era") == []

    add_enrollment(con, ENROLLMENT)
    once = build_observation_period_with_enrollment(con)
    assert once == build_observation_period_with_enrollment(con)


def test_failed_build_rolls_back_and_keeps_previous_rows(con):
    add_events(con)
    build_observation_period(con)
    before = rows(con, "observation_period")
    con.execute("DROP TABLE cdm.death")
    with pytest.raises(duckdb.CatalogException):
        build_observation_period(con)
    assert rows(con, "observation_period") == before
    con.execute("SELECT 1")  # the connection is usable: no transaction left open
    con.begin()
    con.rollback()


def test_schema_is_quoted():
    odd = 'my "cdm"'
    con = new_cdm(odd)
    add_drugs(con, [(1, A_500, d(0), d(10), None)], schema=odd)
    assert build_drug_era(con, odd) == EraResult(1, 0)
    assert build_observation_period(con, odd) == 1


def test_sql_files_start_with_their_rule():
    for name in ("condition_era", "drug_era", "dose_era", "observation_period"):
        text = (eras._SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
        assert text.startswith(f"-- {name}: ")
        assert {"delete"} <= eras.sql_sections(name).keys()


# --- properties ---------------------------------------------------------------------------------

_PROPERTY_CON: duckdb.DuckDBPyConnection | None = None


def property_con() -> duckdb.DuckDBPyConnection:
    global _PROPERTY_CON
    if _PROPERTY_CON is None:
        _PROPERTY_CON = new_cdm()
    return _PROPERTY_CON


def covered_days(intervals: Sequence[tuple[int, int]]) -> int:
    """Days d with start <= d < end for some interval: the brute-force union length."""
    return len({day for start, end in intervals for day in range(start, end)})


# (start day, length in days, product, recorded with an end date or only with days_supply)
exposure = st.tuples(st.integers(0, 200), st.integers(0, 60), st.sampled_from([A_500, A_325]), st.booleans())


def recorded(start: int, length: int, drug: int, has_end: bool) -> tuple:
    if has_end:
        return (7, drug, d(start), d(start + length), None)
    return (7, drug, d(start), None, length or None)  # no days_supply either when length is 0


def effective(start: int, length: int, _drug: int, has_end: bool) -> tuple[int, int]:
    """The exposure interval the OHDSI end-date rule gives."""
    return (start, start + length) if has_end or length else (start, start + 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(exposure, min_size=1, max_size=25))
def test_drug_eras_are_disjoint_sorted_separated_and_cover_every_exposure(exposures):
    con = property_con()
    con.execute("DELETE FROM cdm.drug_exposure")
    add_drugs(con, [recorded(*e) for e in exposures])
    result = build_drug_era(con)
    got = con.execute(
        """SELECT drug_era_id, person_id, drug_concept_id, drug_era_start_date - DATE '2020-01-01',
                  drug_era_end_date - DATE '2020-01-01', drug_exposure_count, gap_days
           FROM cdm.drug_era ORDER BY drug_era_start_date"""
    ).fetchall()

    assert result == EraResult(rows=len(got), excluded=0)
    assert [r[0] for r in got] == list(range(1, len(got) + 1))
    assert {(r[1], r[2]) for r in got} == {(7, ING_A)}
    assert sum(r[5] for r in got) == len(exposures)
    for era, following in itertools.pairwise(got):
        assert era[3] <= era[4] < following[3]
        assert following[3] - era[4] > 30
    intervals = [effective(*e) for e in exposures]
    for start, end in intervals:
        assert sum(1 for era in got if era[3] <= start and end <= era[4]) == 1
    for era in got:
        inside = [(s, e) for s, e in intervals if era[3] <= s and e <= era[4]]
        assert len(inside) == era[5]
        assert era[3] == min(s for s, _ in inside)
        assert era[4] == max(e for _, e in inside)
        assert era[6] == (era[4] - era[3]) - covered_days(inside)
