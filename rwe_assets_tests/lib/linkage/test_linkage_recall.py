"""Recall tolerances of the household guard (issue 18): errors of one person's records that the guard
took for another family member. Each test fails when its tolerance is removed, and its counterpart
checks that the real conflict it must not excuse still holds the pair."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.crosswalk import link

KEY = "test-key-for-linkage-recall"
BASE = {
    "given_name": "Isabelle",
    "family_name": "Quarrington",
    "birth_date": "1979-01-22",
    "sex": "F",
    "address_line": "12 Elm Street",
    "zip": "01970",
    "email": "iquarrington@mail.org",
    "ssn": None,
    "_batch_id": "b1",
}
COLUMNS = ("source_system", "source_person_id", *BASE)


def conflict(tmp_path, left: dict, right: dict) -> bool:
    """The household guard's verdict on two records (BASE with `left` / `right` changes)."""
    rows = [
        {**BASE, **left, "source_system": "site_a", "source_person_id": "a"},
        {**BASE, **right, "source_system": "site_b", "source_person_id": "b"},
    ]
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    link(con, tmp_path, KEY)
    return con.execute("SELECT coalesce(household_conflict, false) FROM lk_pairs").fetchone()[0]


def test_a_scrambled_first_name_is_no_other_family_member(tmp_path):
    # letters shuffled and one dropped (more than one edit, Dice < 0.6): the same letters, not a sister
    assert conflict(tmp_path, {}, {"given_name": "Elsiabl"}) is False


def test_another_first_name_of_other_letters_is_still_a_conflict(tmp_path):
    assert conflict(tmp_path, {}, {"given_name": "Harriet"}) is True


NO_HOME = {"address_line": None, "zip": None}  # one street is a conflict for any dates apart


def test_a_birth_year_a_few_years_off_is_a_typo_not_a_junior(tmp_path):
    # same name and email, the date 3 years off (not one digit, not a neighbouring month)
    assert conflict(tmp_path, NO_HOME, {**NO_HOME, "birth_date": "1976-06-30"}) is False


def test_a_birth_year_decades_apart_is_still_a_conflict(tmp_path):
    # a mother and daughter of one name sharing an email (Jr./Sr.)
    assert conflict(tmp_path, NO_HOME, {**NO_HOME, "birth_date": "1951-06-30"}) is True


def test_swapped_names_are_one_first_name_for_dates_months_apart(tmp_path):
    # names written in the other order, birth dates of one year months apart, a shared email only
    left = {**NO_HOME, "given_name": "Ryan", "family_name": "Turner", "birth_date": "1990-06-04"}
    right = {**NO_HOME, "given_name": "Turner", "family_name": "Ryan", "birth_date": "1990-03-21"}
    assert conflict(tmp_path, left, right) is False


def test_other_first_names_with_dates_months_apart_are_still_a_conflict(tmp_path):
    left = {**NO_HOME, "given_name": "Ryan", "family_name": "Turner", "birth_date": "1990-06-04"}
    right = {**NO_HOME, "given_name": "Ethan", "family_name": "Turner", "birth_date": "1990-03-21"}
    assert conflict(tmp_path, left, right) is True


def test_the_same_identifier_excuses_a_birth_date_typo_at_one_home(tmp_path):
    # same name, address and SSN; the birth date mistyped beyond one digit (a FEBRL-style duplicate)
    ssn = {"ssn": "123-45-6780"}
    assert conflict(tmp_path, ssn, {**ssn, "birth_date": "1971-10-12"}) is False


def test_a_mothers_ssn_on_her_child_is_still_a_conflict(tmp_path):
    # the child's record carries the mother's SSN: another first name and another birth date
    ssn = {"ssn": "123-45-6780"}
    assert conflict(tmp_path, ssn, {**ssn, "given_name": "Harriet", "birth_date": "2004-10-12"}) is True


def test_a_title_in_the_given_name_field_is_no_first_name(tmp_path):
    # a register writes the title where the first name goes: no first name, so no conflict
    assert conflict(tmp_path, {}, {"given_name": "Sir"}) is False
    assert conflict(tmp_path, {}, {"given_name": "Maj.-Gen."}) is False
