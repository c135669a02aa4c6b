"""The household guard uses the model's fuzzy agreement: a typo (mark/mrak: one edit, Dice < 0.6) is
the same person; only a true conflict (another first name, birth years apart, another SSN) holds a
high-scoring pair for review."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.crosswalk import link

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Mark",
    "family_name": "Okonkwo",
    "birth_date": "1970-05-17",
    "sex": "M",
    "address_line": "12 Elm Street",
    "zip": "01970",
    "phone": "555-201-3344",
    "_batch_id": "b1",
}
COLUMNS = ("source_system", "source_person_id", *BASE)


def pair(tmp_path, **changes) -> tuple[str, bool]:
    rows = [{**BASE, "source_system": "site_a", "source_person_id": "a"}]
    rows.append({**BASE, **changes, "source_system": "site_b", "source_person_id": "b"})
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    link(con, tmp_path, KEY)
    return con.execute("SELECT decision, coalesce(household_conflict, false) FROM lk_pairs").fetchone()


def test_transposed_letters_in_the_first_name_are_the_same_person(tmp_path):
    assert pair(tmp_path, given_name="Mrak", phone=None) == ("match", False)


def test_a_birth_date_typo_across_a_year_is_no_conflict(tmp_path):
    # one digit of the year mistyped: years differ, yet the model calls it a one-digit typo
    assert pair(tmp_path, given_name="Mrak", birth_date="1971-05-17")[1] is False


def test_another_first_name_in_the_same_household_is_a_conflict(tmp_path):
    # a twin: same family name, birth date, address and phone, another first name
    decision, conflict = pair(tmp_path, given_name="Samuel")
    assert conflict is True and decision != "match"
