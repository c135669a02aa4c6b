"""Visit rollup: hand-built cases with their answers written out, and properties checked by hypothesis."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rwe_assets.lib.cdm.visits import (
    EMERGENCY_ROOM_AND_INPATIENT_VISIT,
    EMERGENCY_ROOM_VISIT,
    HOME_VISIT,
    INPATIENT_VISIT,
    MERGE_RULES,
    NO_MATCHING_CONCEPT,
    OUTPATIENT_VISIT,
    TELEHEALTH,
    VISIT_CLASSES,
    StagedVisitsError,
    rollup_visits,
)

STAGED_DDL = """
CREATE OR REPLACE TABLE {name} (
    visit_key VARCHAR, person_id BIGINT, visit_class VARCHAR, start_datetime TIMESTAMP,
    end_datetime TIMESTAMP, source_system VARCHAR, provider_key VARCHAR, care_site_key VARCHAR,
    source_value VARCHAR
)
"""


@dataclass(frozen=True)
class V:
    """One staged visit. Datetimes as 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD' (midnight, as claims)."""

    key: str
    visit_class: str
    start: str
    end: str | None
    person: int = 1
    source: str = "ehr"
    provider: str | None = None
    care_site: str | None = None
    source_value: str | None = None

    def row(self) -> tuple:
        return (
            self.key,
            self.person,
            self.visit_class,
            _ts(self.start),
            None if self.end is None else _ts(self.end),
            self.source,
            self.provider,
            self.care_site,
            self.visit_class if self.source_value is None else self.source_value,
        )


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def stage(con: duckdb.DuckDBPyConnection, visits: list[V], name: str = "staged") -> str:
    con.execute(STAGED_DDL.format(name=name))
    if visits:
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [v.row() for v in visits])
    return name


def run(visits: list[V]) -> tuple[dict[str, dict], dict[str, tuple[str, str]], object]:
    """Roll the visits up in a fresh database: (visits by group key, map visit_key -> (group, rule),
    result)."""
    con = duckdb.connect()
    result = rollup_visits(con, stage(con, visits))
    return read_visits(con), read_map(con), result


def read_visits(con: duckdb.DuckDBPyConnection, table: str = "rollup_visit") -> dict[str, dict]:
    cursor = con.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def read_map(con: duckdb.DuckDBPyConnection, table: str = "rollup_visit_map") -> dict[str, tuple[str, str]]:
    rows = con.execute(f"SELECT visit_key, visit_group_key, rollup_rule FROM {table}").fetchall()
    return {key: (group, rule) for key, group, rule in rows}


def dt(text: str) -> datetime:
    return _ts(text)


# --- R1: inpatient stays ---------------------------------------------------------------------------


def test_two_overlapping_inpatient_stays_are_one_visit():
    visits, mapping, result = run(
        [
            V("ehr|a", "inpatient", "2020-03-01 08:00", "2020-03-05 12:00"),
            V("ehr|b", "inpatient", "2020-03-03 09:00", "2020-03-08 10:00"),
        ]
    )
    assert list(visits) == ["ehr|a"]
    visit = visits["ehr|a"]
    assert visit["visit_concept_id"] == INPATIENT_VISIT == 9201
    assert (visit["visit_start_datetime"], visit["visit_end_datetime"]) == (
        dt("2020-03-01 08:00"),
        dt("2020-03-08 10:00"),
    )
    assert (visit["visit_start_date"], visit["visit_end_date"]) == (date(2020, 3, 1), date(2020, 3, 8))
    assert visit["source_rows"] == 2
    assert mapping == {"ehr|a": ("ehr|a", "none"), "ehr|b": ("ehr|a", "inpatient_contiguous")}
    assert result.merged_rows_by_rule == {"inpatient_contiguous": 1, "er_to_inpatient": 0, "duplicate": 0}


def test_three_chained_stays_merge_fully():
    # A overlaps B, B touches C (C starts the day after B ends), A and C are far apart: one stay.
    visits, mapping, _ = run(
        [
            V("ehr|c", "inpatient", "2020-03-09 10:00", "2020-03-12 10:00"),
            V("ehr|a", "inpatient", "2020-03-01 10:00", "2020-03-04 10:00"),
            V("ehr|b", "inpatient", "2020-03-03 10:00", "2020-03-08 10:00"),
        ]
    )
    assert list(visits) == ["ehr|a"]
    assert visits["ehr|a"]["visit_start_datetime"] == dt("2020-03-01 10:00")
    assert visits["ehr|a"]["visit_end_datetime"] == dt("2020-03-12 10:00")
    assert visits["ehr|a"]["source_rows"] == 3
    assert {key: group for key, (group, _) in mapping.items()} == {
        "ehr|a": "ehr|a",
        "ehr|b": "ehr|a",
        "ehr|c": "ehr|a",
    }


def test_chain_is_judged_against_the_running_max_end_not_the_previous_row():
    # B lies inside the long stay A; C does not touch B but overlaps A: all one stay. An algorithm
    # comparing each row with the previous one only would split C off.
    visits, _, _ = run(
        [
            V("ehr|a", "inpatient", "2020-03-01 10:00", "2020-03-20 10:00"),
            V("ehr|b", "inpatient", "2020-03-02 10:00", "2020-03-03 10:00"),
            V("ehr|c", "inpatient", "2020-03-10 10:00", "2020-03-12 10:00"),
        ]
    )
    assert list(visits) == ["ehr|a"]
    assert visits["ehr|a"]["visit_end_datetime"] == dt("2020-03-20 10:00")


def test_two_day_gap_is_not_merged():
    # Discharged on the 5th, readmitted on the 7th: the 6th is a whole day out of hospital.
    visits, mapping, result = run(
        [
            V("ehr|a", "inpatient", "2020-03-01 10:00", "2020-03-05 10:00"),
            V("ehr|b", "inpatient", "2020-03-07 10:00", "2020-03-09 10:00"),
        ]
    )
    assert sorted(visits) == ["ehr|a", "ehr|b"]
    assert all(v["visit_concept_id"] == INPATIENT_VISIT and v["source_rows"] == 1 for v in visits.values())
    assert mapping == {"ehr|a": ("ehr|a", "none"), "ehr|b": ("ehr|b", "none")}
    assert result.merged_rows == 0


def test_readmission_the_next_calendar_day_merges_even_more_than_24_hours_later():
    # The rule compares dates: discharge 5th 08:00, readmission 6th 23:00 (39 hours) -> one stay.
    visits, _, _ = run(
        [
            V("ehr|a", "inpatient", "2020-03-01 10:00", "2020-03-05 08:00"),
            V("ehr|b", "inpatient", "2020-03-06 23:00", "2020-03-09 10:00"),
        ]
    )
    assert list(visits) == ["ehr|a"]
    assert visits["ehr|a"]["visit_end_datetime"] == dt("2020-03-09 10:00")


def test_inpatient_from_ehr_and_inpatient_claim_for_the_same_stay_are_one_visit():
    # The hospital's encounter has times; the payer's claim has dates only (midnight).
    visits, mapping, result = run(
        [
            V(
                "ehr|enc1",
                "inpatient",
                "2020-05-10 14:30",
                "2020-05-14 11:00",
                provider="dr-x",
                care_site="h1",
            ),
            V("claims|c9", "inpatient_claim", "2020-05-10", "2020-05-14", source="claims", provider="npi-1"),
        ]
    )
    assert list(visits) == ["claims|c9"]  # smallest key
    visit = visits["claims|c9"]
    assert visit["visit_concept_id"] == INPATIENT_VISIT
    assert visit["source_rows"] == 2
    assert visit["visit_start_datetime"] == dt("2020-05-10 00:00")  # earliest start: the claim's
    assert visit["visit_end_datetime"] == dt("2020-05-14 11:00")  # latest end: the hospital's
    # First source visit = earliest start = the claim.
    assert (visit["provider_key"], visit["source_system"], visit["visit_source_value"]) == (
        "npi-1",
        "claims",
        "inpatient_claim",
    )
    assert mapping["ehr|enc1"] == ("claims|c9", "inpatient_contiguous")
    assert result.merged_rows_by_rule["inpatient_contiguous"] == 1


# --- R2: ER followed by admission -------------------------------------------------------------------


def test_er_then_admission_same_day_is_one_er_and_inpatient_visit():
    visits, mapping, result = run(
        [
            V(
                "ehr|er",
                "emergency",
                "2020-06-01 09:00",
                "2020-06-01 13:00",
                provider="dr-er",
                care_site="h1",
            ),
            V(
                "ehr|ip",
                "inpatient",
                "2020-06-01 13:30",
                "2020-06-04 10:00",
                provider="dr-ward",
                care_site="h1",
            ),
        ]
    )
    assert list(visits) == ["ehr|er"]
    visit = visits["ehr|er"]
    assert visit["visit_concept_id"] == EMERGENCY_ROOM_AND_INPATIENT_VISIT == 262
    assert (visit["visit_start_datetime"], visit["visit_end_datetime"]) == (
        dt("2020-06-01 09:00"),
        dt("2020-06-04 10:00"),
    )
    assert (visit["visit_source_value"], visit["provider_key"], visit["care_site_key"]) == (
        "emergency",
        "dr-er",
        "h1",
    )
    assert visit["source_rows"] == 2
    assert mapping == {"ehr|er": ("ehr|er", "none"), "ehr|ip": ("ehr|er", "er_to_inpatient")}
    assert result.merged_rows_by_rule == {"inpatient_contiguous": 0, "er_to_inpatient": 1, "duplicate": 0}


def test_er_then_admission_the_next_day_merges():
    visits, _, _ = run(
        [
            V("ehr|er", "emergency", "2020-06-01 22:00", "2020-06-01 23:50"),
            V("ehr|ip", "inpatient", "2020-06-02 07:00", "2020-06-04 10:00"),
        ]
    )
    assert [v["visit_concept_id"] for v in visits.values()] == [EMERGENCY_ROOM_AND_INPATIENT_VISIT]


def test_er_then_admission_three_days_later_are_separate():
    visits, mapping, result = run(
        [
            V("ehr|er", "emergency", "2020-06-01 09:00", "2020-06-01 13:00"),
            V("ehr|ip", "inpatient", "2020-06-04 09:00", "2020-06-06 10:00"),
        ]
    )
    assert {k: v["visit_concept_id"] for k, v in visits.items()} == {
        "ehr|er": EMERGENCY_ROOM_VISIT,
        "ehr|ip": INPATIENT_VISIT,
    }
    assert mapping == {"ehr|er": ("ehr|er", "none"), "ehr|ip": ("ehr|ip", "none")}
    assert result.merged_rows == 0


def test_er_two_days_before_admission_is_separate():
    visits, _, _ = run(
        [
            V("ehr|er", "emergency", "2020-06-01 09:00", "2020-06-01 13:00"),
            V("ehr|ip", "inpatient", "2020-06-03 09:00", "2020-06-06 10:00"),
        ]
    )
    assert {k: v["visit_concept_id"] for k, v in visits.items()} == {
        "ehr|er": EMERGENCY_ROOM_VISIT,
        "ehr|ip": INPATIENT_VISIT,
    }


def test_er_visit_during_a_stay_stays_its_own_visit():
    visits, _, _ = run(
        [
            V("ehr|ip", "inpatient", "2020-06-01 09:00", "2020-06-10 10:00"),
            V("ehr|er", "emergency", "2020-06-05 02:00", "2020-06-05 04:00"),
        ]
    )
    assert {k: v["visit_concept_id"] for k, v in visits.items()} == {
        "ehr|ip": INPATIENT_VISIT,
        "ehr|er": EMERGENCY_ROOM_VISIT,
    }


def test_urgent_care_before_admission_is_not_an_er_visit():
    visits, _, _ = run(
        [
            V("ehr|uc", "urgentcare", "2020-06-01 09:00", "2020-06-01 10:00"),
            V("ehr|ip", "inpatient", "2020-06-01 12:00", "2020-06-03 10:00"),
        ]
    )
    assert {k: v["visit_concept_id"] for k, v in visits.items()} == {
        "ehr|uc": OUTPATIENT_VISIT,
        "ehr|ip": INPATIENT_VISIT,
    }


def test_er_admission_with_transfer_and_claim_is_one_visit_described_by_the_er_visit():
    # ER (EHR, with times) -> admission -> transfer the next day; the payer's claim (dates only) covers
    # the whole stay. The claim's midnight start sorts before the ER arrival, yet the ER row describes
    # the visit. Counts: 2 inpatient rows merged by contiguity, 1 by the ER rule.
    visits, mapping, result = run(
        [
            V("ehr|1", "emergency", "2020-07-01 10:00", "2020-07-01 15:00", provider="dr-er"),
            V("ehr|2", "inpatient", "2020-07-01 15:30", "2020-07-03 09:00", provider="dr-ward"),
            V("ehr|3", "inpatient", "2020-07-03 09:00", "2020-07-08 16:00", provider="dr-rehab"),
            V("pay|7", "inpatient_claim", "2020-07-01", "2020-07-08", source="payer", provider="npi"),
        ]
    )
    assert list(visits) == ["ehr|1"]
    visit = visits["ehr|1"]
    assert visit["visit_concept_id"] == EMERGENCY_ROOM_AND_INPATIENT_VISIT
    assert visit["visit_start_datetime"] == dt("2020-07-01 00:00")
    assert visit["visit_end_datetime"] == dt("2020-07-08 16:00")
    assert (visit["provider_key"], visit["visit_source_value"], visit["source_rows"]) == (
        "dr-er",
        "emergency",
        4,
    )
    assert mapping == {
        "ehr|1": ("ehr|1", "none"),
        "ehr|2": ("ehr|1", "er_to_inpatient"),
        "ehr|3": ("ehr|1", "inpatient_contiguous"),
        "pay|7": ("ehr|1", "inpatient_contiguous"),
    }
    assert result.merged_rows_by_rule == {"inpatient_contiguous": 2, "er_to_inpatient": 1, "duplicate": 0}


def test_er_visit_joins_only_the_first_qualifying_stay():
    # A 5-day ER record (bad data, but possible) could precede two separate stays: it joins the first.
    visits, mapping, _ = run(
        [
            V("ehr|er", "emergency", "2020-06-01 09:00", "2020-06-06 09:00"),
            V("ehr|ip1", "inpatient", "2020-06-02 09:00", "2020-06-02 18:00"),
            V("ehr|ip2", "inpatient", "2020-06-05 09:00", "2020-06-07 18:00"),
        ]
    )
    assert {k: v["visit_concept_id"] for k, v in visits.items()} == {
        "ehr|er": EMERGENCY_ROOM_AND_INPATIENT_VISIT,
        "ehr|ip2": INPATIENT_VISIT,
    }
    assert mapping["ehr|ip1"] == ("ehr|er", "er_to_inpatient")


# --- R3 and everything else -------------------------------------------------------------------------


def test_two_outpatient_visits_on_one_day_stay_two_visits():
    visits, _, result = run(
        [
            V("ehr|a", "ambulatory", "2020-02-01 09:00", "2020-02-01 09:30"),
            V("ehr|b", "ambulatory", "2020-02-01 14:00", "2020-02-01 14:15"),
        ]
    )
    assert sorted(visits) == ["ehr|a", "ehr|b"]
    assert {v["visit_concept_id"] for v in visits.values()} == {OUTPATIENT_VISIT}
    assert result.merged_rows == 0


def test_outpatient_visits_with_the_same_start_but_different_ends_stay_two_visits():
    visits, _, _ = run(
        [
            V("ehr|a", "wellness", "2020-02-01 09:00", "2020-02-01 09:30"),
            V("ehr|b", "wellness", "2020-02-01 09:00", "2020-02-01 09:45"),
        ]
    )
    assert len(visits) == 2


def test_exact_duplicate_is_one_visit():
    visits, mapping, result = run(
        [
            V("ehr|b", "wellness", "2020-02-01 09:00", "2020-02-01 09:30", provider="p-b"),
            V("ehr|a", "wellness", "2020-02-01 09:00", "2020-02-01 09:30", provider=None),
        ]
    )
    assert list(visits) == ["ehr|a"]
    visit = visits["ehr|a"]
    assert visit["source_rows"] == 2
    # First source visit (same start: smallest key) gives the provider, even a NULL one.
    assert visit["provider_key"] is None
    assert mapping == {"ehr|a": ("ehr|a", "none"), "ehr|b": ("ehr|a", "duplicate")}
    assert result.merged_rows_by_rule == {"inpatient_contiguous": 0, "er_to_inpatient": 0, "duplicate": 1}


def test_exact_duplicates_with_null_end_and_null_source_system_merge():
    visits, _, _ = run(
        [
            V("x|1", "emergency", "2020-02-01 09:00", None, source=None),
            V("x|2", "emergency", "2020-02-01 09:00", None, source=None),
        ]
    )
    assert list(visits) == ["x|1"]
    assert visits["x|1"]["visit_concept_id"] == EMERGENCY_ROOM_VISIT


def test_identical_visits_from_two_source_systems_are_not_duplicates():
    visits, _, _ = run(
        [
            V("site_a|1", "outpatient", "2020-02-01 09:00", "2020-02-01 09:30", source="site_a"),
            V("site_b|1", "outpatient", "2020-02-01 09:00", "2020-02-01 09:30", source="site_b"),
        ]
    )
    assert sorted(visits) == ["site_a|1", "site_b|1"]


def test_null_end_becomes_start():
    visits, _, _ = run(
        [
            V("ehr|op", "outpatient", "2020-02-01 09:00", None),
            V("ehr|ip", "inpatient", "2020-03-01 09:00", None),
        ]
    )
    for key, start in (("ehr|op", "2020-02-01 09:00"), ("ehr|ip", "2020-03-01 09:00")):
        assert visits[key]["visit_end_datetime"] == visits[key]["visit_start_datetime"] == dt(start)
        assert visits[key]["visit_end_date"] == dt(start).date()


def test_inpatient_with_null_end_is_extended_by_a_next_day_admission_only():
    visits, _, _ = run(
        [
            V("ehr|a", "inpatient", "2020-03-01 09:00", None),  # lasts its admission day
            V("ehr|b", "inpatient", "2020-03-02 09:00", "2020-03-04 09:00"),  # touches: merged
            V("ehr|c", "inpatient", "2020-03-10 09:00", None),
            V("ehr|d", "inpatient", "2020-03-12 09:00", "2020-03-13 09:00"),  # 2 days later: separate
        ]
    )
    assert {k: (v["visit_start_date"], v["visit_end_date"]) for k, v in visits.items()} == {
        "ehr|a": (date(2020, 3, 1), date(2020, 3, 4)),
        "ehr|c": (date(2020, 3, 10), date(2020, 3, 10)),
        "ehr|d": (date(2020, 3, 12), date(2020, 3, 13)),
    }


def test_end_before_start_becomes_start():
    visits, _, _ = run([V("ehr|a", "outpatient", "2020-02-01 09:00", "2020-01-31 09:00")])
    assert visits["ehr|a"]["visit_end_datetime"] == dt("2020-02-01 09:00")


def test_different_persons_are_never_merged():
    visits, _, result = run(
        [
            V("ehr|1", "inpatient", "2020-03-01 08:00", "2020-03-05 12:00", person=1),
            V("ehr|2", "inpatient", "2020-03-01 08:00", "2020-03-05 12:00", person=2),
            V("ehr|3", "emergency", "2020-03-01 06:00", "2020-03-01 07:00", person=3),
            V("ehr|4", "wellness", "2020-04-01 08:00", "2020-04-01 09:00", person=1),
            V("ehr|5", "wellness", "2020-04-01 08:00", "2020-04-01 09:00", person=2),
        ]
    )
    assert len(visits) == 5
    assert {v["visit_group_key"]: v["person_id"] for v in visits.values()} == {
        "ehr|1": 1,
        "ehr|2": 2,
        "ehr|3": 3,
        "ehr|4": 1,
        "ehr|5": 2,
    }
    assert result.merged_rows == 0


def test_visit_concepts_of_the_other_classes():
    classes = ["outpatient", "ambulatory", "wellness", "urgentcare", "home", "virtual", "other"]
    classes += ["outpatient_claim", "carrier_claim", "hospice", "snf", "made_up_class"]
    visits, _, result = run(
        [V(f"k|{i:02d}", cls, f"2020-01-{i + 1:02d} 09:00", None) for i, cls in enumerate(classes)]
    )
    by_class = {classes[int(k.split("|")[1])]: v["visit_concept_id"] for k, v in visits.items()}
    assert by_class == {
        "outpatient": OUTPATIENT_VISIT,
        "ambulatory": OUTPATIENT_VISIT,
        "wellness": OUTPATIENT_VISIT,
        "urgentcare": OUTPATIENT_VISIT,
        "home": HOME_VISIT,
        "virtual": TELEHEALTH,
        "other": NO_MATCHING_CONCEPT,
        "outpatient_claim": OUTPATIENT_VISIT,
        "carrier_claim": OUTPATIENT_VISIT,
        "hospice": NO_MATCHING_CONCEPT,
        "snf": NO_MATCHING_CONCEPT,
        "made_up_class": NO_MATCHING_CONCEPT,
    }
    assert (HOME_VISIT, TELEHEALTH) == (581476, 722455)
    assert result.unmapped_class_rows == 1


def test_concept_constants_are_the_documented_ids():
    assert {name: spec.concept_id for name, spec in VISIT_CLASSES.items()} == {
        "inpatient": 9201,
        "emergency": 9203,
        "outpatient": 9202,
        "ambulatory": 9202,
        "wellness": 9202,
        "urgentcare": 9202,
        "home": 581476,
        "virtual": 722455,
        "other": 0,
        "hospice": 0,
        "snf": 0,
        "inpatient_claim": 9201,
        "outpatient_claim": 9202,
        "carrier_claim": 9202,
    }
    assert {name for name, spec in VISIT_CLASSES.items() if spec.role != "other"} == {
        "inpatient",
        "inpatient_claim",
        "emergency",
    }


# --- stability, reconciliation, the function's contract -----------------------------------------------

MIXED = [
    V("ehr|01", "emergency", "2021-01-01 10:00", "2021-01-01 15:00", provider="a"),
    V("ehr|02", "inpatient", "2021-01-01 16:00", "2021-01-04 10:00", provider="b"),
    V("pay|01", "inpatient_claim", "2021-01-01", "2021-01-04", source="payer"),
    V("ehr|03", "inpatient", "2021-01-05 09:00", "2021-01-07 10:00"),
    V("ehr|04", "inpatient", "2021-01-20 09:00", None),
    V("ehr|05", "wellness", "2021-02-01 09:00", "2021-02-01 09:30"),
    V("ehr|06", "wellness", "2021-02-01 09:00", "2021-02-01 09:30"),
    V("ehr|07", "ambulatory", "2021-02-01 11:00", "2021-02-01 11:30"),
    V("ehr|08", "emergency", "2021-03-01 10:00", "2021-03-01 12:00"),
    V("ehr|09", "inpatient", "2021-03-04 10:00", "2021-03-05 12:00"),
    V("ehr|10", "virtual", "2021-04-01 10:00", None, person=2),
    V("ehr|11", "inpatient", "2021-01-02 10:00", "2021-01-03 12:00", person=2),
]


def _snapshot(con: duckdb.DuckDBPyConnection) -> tuple[list, list]:
    return (
        con.execute("SELECT * FROM rollup_visit ORDER BY visit_group_key").fetchall(),
        con.execute("SELECT * FROM rollup_visit_map ORDER BY visit_key").fetchall(),
    )


def leftovers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Work tables, temporary input views or __new tables left behind (all have '__' in the name)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE contains(table_name, '__') "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE contains(view_name, '__')"
    ).fetchall()
    return [name for (name,) in rows]


def test_shuffled_input_and_reruns_give_identical_output():
    con = duckdb.connect()
    rollup_visits(con, stage(con, MIXED))
    expected = _snapshot(con)
    rollup_visits(con, "staged")  # rerun replaces the tables with equal content
    assert _snapshot(con) == expected
    for seed in range(5):
        shuffled = list(MIXED)
        random.Random(seed).shuffle(shuffled)
        other = duckdb.connect()
        rollup_visits(other, stage(other, shuffled))
        assert _snapshot(other) == expected


def test_counts_reconcile():
    visits, mapping, result = run(MIXED)
    assert result.input_rows == len(MIXED) == len(mapping)
    # Person 1: ER + 2 admissions + claim -> one 262 (2 contiguous, 1 ER); a lone stay; a wellness
    # duplicate pair -> one; ambulatory; ER and a stay 3 days apart -> two. Person 2: two visits.
    assert result.output_visits == len(visits) == 8
    assert result.merged_rows_by_rule == {"inpatient_contiguous": 2, "er_to_inpatient": 1, "duplicate": 1}
    assert result.input_rows == result.output_visits + result.merged_rows
    assert result.reconciles
    assert sum(v["source_rows"] for v in visits.values()) == len(MIXED)
    assert sum(rule == "none" for _, rule in mapping.values()) == len(visits)
    assert set(MERGE_RULES) == set(result.merged_rows_by_rule)


def test_accepts_a_relation_and_a_schema_qualified_prefix():
    con = duckdb.connect()
    stage(con, MIXED)
    con.execute("CREATE SCHEMA work")
    result = rollup_visits(con, con.sql("SELECT * FROM staged WHERE person_id = 1"), out_prefix="work.vr")
    assert (result.visit_table, result.map_table) == ('"work"."vr_visit"', '"work"."vr_visit_map"')
    assert result.input_rows == 10
    assert con.execute(f"SELECT count(*) FROM {result.map_table}").fetchone() == (10,)
    assert leftovers(con) == []


def test_outputs_can_be_temporary_and_do_not_clobber_same_named_tables():
    con = duckdb.connect()
    stage(con, MIXED)
    temp = rollup_visits(con, "staged", out_prefix="temp.main.rollup")
    main = rollup_visits(con, "staged")  # unqualified: the current schema, not the temp table
    assert temp.visit_table == '"temp"."main"."rollup_visit"'
    assert main.visit_table == '"memory"."main"."rollup_visit"'
    tables = con.execute(
        "SELECT database_name, table_name, temporary FROM duckdb_tables() "
        "WHERE table_name LIKE 'rollup%' ORDER BY ALL"
    ).fetchall()
    assert tables == [
        ("memory", "rollup_visit", False),
        ("memory", "rollup_visit_map", False),
        ("temp", "rollup_visit", True),
        ("temp", "rollup_visit_map", True),
    ]


def test_runs_inside_the_callers_transaction():
    con = duckdb.connect()
    stage(con, MIXED)
    con.begin()
    result = rollup_visits(con, "staged")
    con.rollback()
    assert result.output_visits == 8
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'rollup_visit'"
    ).fetchone() == (0,)


def test_empty_input():
    visits, mapping, result = run([])
    assert (visits, mapping, result.input_rows, result.output_visits, result.merged_rows) == ({}, {}, 0, 0, 0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [V("k|1", "wellness", "2020-01-01", None), V("k|1", "wellness", "2020-01-02", None)],
            "1 visit_key value",
        ),
        ([V("k|1", "wellness", "2020-01-01", None, person=None)], "1 row(s) with a NULL person_id"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_refused_and_previous_tables_are_kept(rows, message):
    con = duckdb.connect()
    rollup_visits(con, stage(con, MIXED))
    before = _snapshot(con)
    with pytest.raises(StagedVisitsError, match=re.escape(message)) as error:
        rollup_visits(con, stage(con, rows, name="bad"))
    assert "k|1" not in str(error.value)  # messages never quote data values
    assert _snapshot(con) == before
    assert leftovers(con) == []


def test_missing_column_and_bad_names_are_refused():
    con = duckdb.connect()
    con.execute("CREATE TABLE thin AS SELECT 'k' AS visit_key, 1 AS person_id")
    with pytest.raises(StagedVisitsError, match="missing column"):
        rollup_visits(con, "thin")
    with pytest.raises(StagedVisitsError, match="staged_visits"):
        rollup_visits(con, "thin; DROP TABLE thin")
    with pytest.raises(StagedVisitsError, match="out_prefix"):
        rollup_visits(con, "thin", out_prefix='x"y')


def test_sql_comments_hold_no_placeholders():
    # Comments are rendered too: a placeholder in a comment would splice SQL into it.
    for name in ("visit_rollup.sql", "visit_rollup_input.sql"):
        text = (resources.files("rwe_assets.lib") / "sql" / "cdm" / name).read_text()
        for line in text.splitlines():
            if line.lstrip().startswith("--"):
                assert "{{" not in line, (name, line)


# --- properties ---------------------------------------------------------------------------------------

BASE = datetime(2020, 1, 1)


@st.composite
def inpatient_intervals(draw) -> list[tuple[datetime, datetime | None]]:
    """Stays of one person: start within ~60 days, length 0-6 days or NULL end; minute resolution or
    date-only (claims) starts."""
    count = draw(st.integers(min_value=1, max_value=14))
    intervals = []
    for _ in range(count):
        date_only = draw(st.booleans())
        start = BASE + timedelta(days=draw(st.integers(0, 60)))
        if not date_only:
            start += timedelta(minutes=draw(st.integers(0, 24 * 60 - 1)))
        end: datetime | None
        if draw(st.integers(0, 5)) == 0:
            end = None
        else:
            end = start + timedelta(minutes=draw(st.integers(0, 6 * 24 * 60)))
        intervals.append((start, end))
    return intervals


def _reference_stays(intervals: list[tuple[datetime, datetime]]) -> list[tuple[date, date]]:
    """Plain sweep over date intervals: the answer R1 must give."""
    stays: list[list[date]] = []
    for start, end in sorted((s.date(), e.date()) for s, e in intervals):
        if stays and start <= stays[-1][1] + timedelta(days=1):
            stays[-1][1] = max(stays[-1][1], end)
        else:
            stays.append([start, end])
    return [(s, e) for s, e in stays]


@settings(max_examples=100, deadline=None)
@given(intervals=inpatient_intervals(), claim_flags=st.lists(st.booleans(), min_size=14, max_size=14))
def test_property_inpatient_visits_are_disjoint_non_adjacent_and_cover_every_stay(intervals, claim_flags):
    staged = [
        V(
            f"k|{i:02d}",
            "inpatient_claim" if claim_flags[i] else "inpatient",
            start.isoformat(sep=" "),
            None if end is None else end.isoformat(sep=" "),
            source="payer" if claim_flags[i] else "ehr",
        )
        for i, (start, end) in enumerate(intervals)
    ]
    visits, mapping, result = run(staged)
    ordered = sorted(visits.values(), key=lambda v: v["visit_start_datetime"])

    # Disjoint and non-adjacent: at least one whole calendar day between consecutive visits.
    for previous, following in itertools.pairwise(ordered):
        assert (following["visit_start_date"] - previous["visit_end_date"]).days >= 2
    # Every input interval lies inside the visit it maps to, and each visit is exactly the hull of
    # its members.
    members: dict[str, list[tuple[datetime, datetime]]] = {}
    for i, (start, end) in enumerate(intervals):
        effective_end = start if end is None or end < start else end
        group, _ = mapping[f"k|{i:02d}"]
        visit = visits[group]
        assert visit["visit_start_datetime"] <= start and effective_end <= visit["visit_end_datetime"]
        assert visit["visit_concept_id"] == INPATIENT_VISIT
        members.setdefault(group, []).append((start, effective_end))
    for group, spans in members.items():
        assert visits[group]["visit_start_datetime"] == min(s for s, _ in spans)
        assert visits[group]["visit_end_datetime"] == max(e for _, e in spans)
        assert visits[group]["source_rows"] == len(spans)
        assert group == min(k for k, (g, _) in mapping.items() if g == group)
    # Same stays as a plain sweep, and the counts reconcile.
    assert [(v["visit_start_date"], v["visit_end_date"]) for v in ordered] == _reference_stays(
        [(s, s if e is None or e < s else e) for s, e in intervals]
    )
    assert result.reconciles and result.merged_rows == result.merged_rows_by_rule["inpatient_contiguous"]


CLASS_CHOICES = [
    "inpatient",
    "inpatient_claim",
    "emergency",
    "wellness",
    "ambulatory",
    "urgentcare",
    "virtual",
]


@st.composite
def mixed_visits(draw) -> list[V]:
    count = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for i in range(count):
        start = BASE + timedelta(days=draw(st.integers(0, 20)), hours=draw(st.sampled_from([0, 9, 13, 22])))
        length = draw(st.sampled_from([None, 0, 1, 5, 30, 60 * 24, 60 * 24 * 3]))
        rows.append(
            V(
                f"k|{i:02d}",
                draw(st.sampled_from(CLASS_CHOICES)),
                start.isoformat(sep=" "),
                None if length is None else (start + timedelta(minutes=length)).isoformat(sep=" "),
                person=draw(st.integers(1, 3)),
                source=draw(st.sampled_from(["ehr", "payer"])),
            )
        )
    return rows


@settings(max_examples=60, deadline=None)
@given(rows=mixed_visits(), seed=st.integers(0, 2**16))
def test_property_mixed_visits_reconcile_are_stable_and_stay_within_a_person(rows, seed):
    con = duckdb.connect()
    result = rollup_visits(con, stage(con, rows))
    expected = _snapshot(con)
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    other = duckdb.connect()
    rollup_visits(other, stage(other, shuffled))
    assert _snapshot(other) == expected

    visits, mapping = read_visits(con), read_map(con)
    assert result.input_rows == len(rows) == len(mapping)
    assert result.reconciles and result.output_visits == len(visits)
    person_of = {v.key: v.person for v in rows}
    for key, (group, rule) in mapping.items():
        assert person_of[key] == person_of[group] == visits[group]["person_id"]
        assert (rule == "none") == (key == group)
        assert group <= key
    for visit in visits.values():
        assert visit["visit_start_datetime"] <= visit["visit_end_datetime"]
        if visit["visit_concept_id"] == EMERGENCY_ROOM_AND_INPATIENT_VISIT:
            assert visit["visit_source_value"] == "emergency"
