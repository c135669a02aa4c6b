"""Guards against the false merges found on public data (issue 18): a 1 January birth date that may be
a year-only date, names as the only agreeing evidence, nickname lists relating two different names
through a third, siblings of one birth year with related names, impossible dates that still tell a
year."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage import cluster
from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.tokens import build_tokens

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Mary",
    "family_name": "Okonkwo",
    "birth_date": "1970-05-17",
    "sex": "F",
    "address_line": "12 Elm Street",
    "zip": "01970",
    "ssn": None,
    "_batch_id": "b1",
}
COLUMNS = ("source_system", "source_person_id", *BASE)


def _pii(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    return con


def pair(tmp_path, left: dict, right: dict) -> tuple:
    """(rule, decision, household_conflict) of the pair of two records differing by left/right."""
    rows = [
        {**BASE, **left, "source_system": "site_a", "source_person_id": "a"},
        {**BASE, **right, "source_system": "site_b", "source_person_id": "b"},
    ]
    con = _pii(rows)
    link(con, tmp_path, KEY)
    return con.execute("SELECT rule, decision, coalesce(household_conflict, false) FROM lk_pairs").fetchone()


@pytest.mark.parametrize("born", ["1970-11-02", "1970-11-22"])  # the second has no day/month swap
def test_sisters_of_one_birth_year_with_related_names_are_a_conflict(tmp_path, born):
    # Mary and Marie are listed as nicknames of each other; same household, same year, months apart
    rule, decision, conflict = pair(tmp_path, {}, {"given_name": "Marie", "birth_date": born})
    assert conflict is True and decision != "match" and rule is None


def test_one_name_at_one_address_born_months_apart_is_a_conflict(tmp_path):
    # two Robert McGees of one home born the same year, months apart (generated at 100,000 records)
    _, decision, conflict = pair(tmp_path, {"birth_date": "1986-06-24"}, {"birth_date": "1986-11-10"})
    assert conflict is True and decision != "match"


def test_one_name_elsewhere_born_months_apart_is_no_household_conflict(tmp_path):
    # same family name but another address: a birth date entered months off is left to the model
    changes = {"birth_date": "1986-11-10", "address_line": "4 Oak Road", "zip": "02139", "ssn": "412-55-8123"}
    _, _, conflict = pair(tmp_path, {"birth_date": "1986-06-24", "ssn": "412-55-8123"}, changes)
    assert conflict is False


def test_a_nickname_with_a_birth_date_typo_is_no_conflict(tmp_path):
    _, _, conflict = pair(tmp_path, {}, {"given_name": "Marie", "birth_date": "1970-05-18"})
    assert conflict is False


def test_two_names_listed_under_a_third_are_not_nicknames(tmp_path):
    # robert and william are both listed as nicknames of "bill": not one name, so no deterministic
    # name rule and a household conflict (they used to share a canonical name)
    rule, decision, conflict = pair(
        tmp_path, {"given_name": "Robert", "sex": "M"}, {"given_name": "William", "sex": "M"}
    )
    assert rule is None and conflict is True and decision != "match"


def test_a_nickname_of_the_call_name_still_agrees(tmp_path):
    _, decision, conflict = pair(
        tmp_path, {"given_name": "Robert", "sex": "M"}, {"given_name": "Bob", "sex": "M"}
    )
    assert conflict is False and decision == "match"


def test_no_deterministic_rule_on_a_first_of_january(tmp_path):
    # "born 1850" stored as 1850-01-01: same name and that date is not proof of one person
    rule, _, _ = pair(tmp_path, {"birth_date": "1850-01-01"}, {"birth_date": "1850-01-01"})
    assert rule is None
    rule, decision, _ = pair(tmp_path, {"birth_date": "1850-06-12"}, {"birth_date": "1850-06-12"})
    assert rule == "name_dob_sex" and decision == "match"


def _decision(**weights) -> str:
    row = {"rule": None, "match_probability": 0.999, "household_conflict": False}
    row |= {f"mw_{c}": 0.0 for c in ("dob", "sex", "ssn", "identifier", "contact", "email")}
    row |= {f"mw_{k}": v for k, v in weights.items()}
    table = pa.table({k: [v] for k, v in row.items()})
    con = duckdb.connect()
    con.register("t", table)
    return con.execute(f"SELECT CASE {cluster.DECISION_SQL} END FROM t").fetchone()[0]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({}, "review"),  # names only, however likely: review
        ({"dob": 0.5}, "review"),  # too little beside the names
        ({"dob": 3.0, "contact": -4.0}, "review"),  # the other fields disagree on balance
        ({"dob": 3.0}, "match"),
        ({"contact": 5.7, "sex": 0.3}, "match"),
    ],
)
def test_an_automatic_match_needs_evidence_beyond_the_names(weights, expected):
    assert _decision(**weights) == expected


def _tokens(dates: list[str | None]) -> list[tuple]:
    rows = [
        {**BASE, "birth_date": d, "source_system": "s", "source_person_id": str(i)}
        for i, d in enumerate(dates)
    ]
    con = _pii(rows)
    build_tokens(con, KEY)
    return con.execute(
        "SELECT t_dob, t_ym, t_yob FROM lk_tokens ORDER BY source_person_id::INTEGER"
    ).fetchall()


def test_an_impossible_iso_date_keeps_its_year_and_month():
    no_day, no_month, placeholder, same_month = _tokens(
        ["1837-01-00", "1837-17-28", "1900-01-01", "1837-01-15"]
    )
    assert no_day[0] is None and no_day[1] == same_month[1] and no_day[2] == same_month[2]
    assert no_month[0] is None and no_month[1] is None and no_month[2] == same_month[2]
    assert placeholder == (None, None, None)  # a valid placeholder date is not read as a year


def test_a_record_without_birth_date_does_not_join_two_namesakes(tmp_path):
    # one William Jones born 1851, one born 1858, and a record of the name without a birth date at the
    # same address: it may join one of them, never both
    rows = [
        {**BASE, "given_name": "William", "family_name": "Jones", "sex": "M", "birth_date": born,
         "source_system": "site_a", "source_person_id": pid}
        for pid, born in (("a", "1851-07-27"), ("c", "1858-03-28"), ("b", None))
    ]  # fmt: skip
    con = _pii(rows)
    result = link(con, tmp_path, KEY)
    person = {r["source_person_id"]: r["person_id"] for r in result.crosswalk.to_pylist()}
    assert person["a"] != person["c"]
    held = con.execute("SELECT count(*) FROM lk_held").fetchone()[0]
    assert held == 1  # the undated record's second link went to review
