"""Blocking passes for records that share no birth date, exact name or address (issue 18, blocking
recall): an email one typo apart, a postcode with a name, a name one edit apart with the other name or
the city; each pair below shares nothing any other pass uses. Their keys are capped like the other
capped keys (docs/linkage.md, "Blocking")."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import model, tokens

KEY = "test-key-for-linkage-tests"
FIELDS = ("given_name", "family_name", "birth_date", "city", "zip", "email")


def _record(pid: str, given, family, birth_date, city=None, zip_code=None, email=None) -> dict:
    values = (given, family, birth_date, city, zip_code, email)
    return {
        "source_system": "site",
        "source_person_id": pid,
        "_batch_id": "b1",
        **dict(zip(FIELDS, values, strict=True)),
    }


def _compared(rows: list[dict]) -> set[tuple[str, str]]:
    """The record pairs blocking brings to comparison (model.score over the model's rules)."""
    con = duckdb.connect()
    con.register("person_pii", pa.Table.from_pylist(rows))
    tokens.build_tokens(con, KEY)
    model.register_input(con)
    model.score(con, model.prior_settings(), "lk_model_input")
    return {
        (left.split("|")[1], right.split("|")[1])
        for left, right in con.execute("SELECT record_id_l, record_id_r FROM lk_scored").fetchall()
    }


def test_an_email_one_typo_apart_is_compared_without_names_or_dates_in_common():
    """A married name, a mistyped birth date, the email's user part mistyped (so the user-part pass
    does not hold either)."""
    pairs = _compared(
        [
            _record("a", "Ann", "Lee", "1980-01-02", email="ann.lee80@mail.org"),
            _record("b", None, "Smith", "1983-07-09", email="ann.le80@mail.org"),
            _record("c", "Bea", "Quint", "1950-05-05", email="bquint@post.net"),
        ]
    )
    assert pairs == {("a", "b")}


def test_a_postcode_and_a_first_name_are_compared_without_family_name_or_birth_date():
    pairs = _compared(
        [
            _record("a", "Ann", "Lee", "1980-01-02", zip_code="02110"),
            _record("b", "Ann", None, None, zip_code="02110"),
            _record("c", "Ann", None, None, zip_code="90210"),  # another postcode
        ]
    )
    assert pairs == {("a", "b")}


def test_a_family_name_one_edit_apart_is_compared_without_birth_date_or_place():
    """Brandt / Vrandt: a first-letter typo changes the Soundex code too."""
    pairs = _compared(
        [
            _record("a", "Kristen", "Brandt", "1970-05-06"),
            _record("b", "Kristen", "Vrandt", None),
            _record("c", "Kristen", "Vranek", None),  # two edits from Brandt
        ]
    )
    assert ("a", "b") in pairs and ("a", "c") not in pairs


def test_a_first_name_one_edit_apart_in_one_city_is_compared_without_family_name():
    pairs = _compared(
        [
            _record("a", "Theodore", None, "1970-05-06", city="Springfield"),
            _record("b", "Theodroe", "Banks", None, city="Springfield"),
            _record("c", "Theodroe", "Banks", None, city="Shelbyville"),
        ]
    )
    assert ("a", "b") in pairs and ("a", "c") not in pairs


def test_near_keys_held_by_more_records_than_the_cap_are_left_out():
    """A value more than BLOCK_KEY_CAP records share (an office's email, a common full name) makes no
    block: the members of their lists are dropped, a rarer record keeps its own members."""
    many = tokens.BLOCK_KEY_CAP + 1
    rows = [_record(f"p{i}", "Kristen", "Brandt", None, email="front.desk@clinic.org") for i in range(many)]
    rows.append(_record("rare", "Kristen", "Brandtt", None, email="front.desk1@clinic.org"))
    con = duckdb.connect()
    con.register("person_pii", pa.Table.from_pylist(rows))
    tokens.build_tokens(con, KEY)
    common = con.execute(
        "SELECT count(*) FILTER (WHERE t_email_near IS NOT NULL OR k_gf_near IS NOT NULL) FROM lk_tokens "
        "WHERE source_person_id <> 'rare'"
    ).fetchone()[0]
    assert common == 0
    rare_email, rare_names = con.execute(
        "SELECT len(t_email_near), len(k_gf_near) FROM lk_tokens WHERE source_person_id = 'rare'"
    ).fetchone()
    # front.desk1@clinic.org and its 22 deletions, one of them (the common email) dropped. Kristen
    # Brandtt's keys are in every Kristen Brandt's list too (one edit apart): a block of 32, dropped
    assert rare_email == 22 and rare_names is None
