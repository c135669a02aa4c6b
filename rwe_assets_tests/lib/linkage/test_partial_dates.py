"""Records without a full birth date stay in linkage and match on what they have: a NULL birth date
is no information (neither agreement nor disagreement), a year-only or year-month birth date still
agrees or disagrees on year and month, and no blocking rule needs a birth date to find them."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.tokens import build_tokens

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Ottoline",
    "family_name": "Brackenbury",
    "birth_date": "1970-05-17",
    "birth_year": "1970",
    "birth_month": "5",
    "sex": "F",
    "address_line": "12 Elm Street",
    "zip": "01970",
    "phone": "555-201-3344",
    "_batch_id": "b1",
}
COLUMNS = ("source_system", "source_person_id", *BASE)


def rec(source, pid, **changes):
    return {**BASE, "source_system": source, "source_person_id": pid, **changes}


def run(tmp_path, rows):
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    result = link(con, tmp_path, KEY)
    return con, {r["source_person_id"]: r["person_id"] for r in result.crosswalk.to_pylist()}


def test_missing_and_partial_birth_dates_link_on_what_they_have(tmp_path):
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "full"),
            # no birth date at all: name, address and phone still link it
            rec("site_b", "none", birth_date=None, birth_year=None, birth_month=None),
            rec("site_b", "year_month", birth_date=None, birth_month="5"),
            rec("site_b", "year_only", birth_date=None, birth_month=None, phone=None),
        ],
    )
    assert xw["full"] == xw["none"] == xw["year_month"] == xw["year_only"]


def test_no_birth_date_and_a_new_address_still_reach_comparison(tmp_path):
    """Name only (capped name key): the pair is compared and scored, but name and sex alone are not
    enough to merge."""
    con, xw = run(
        tmp_path,
        [
            rec("site_a", "full"),
            rec(
                "site_b",
                "moved",
                birth_date=None,
                birth_year=None,
                birth_month=None,
                address_line="4 Mill Road",
                zip="02134",
                phone=None,
            ),
        ],
    )
    assert con.execute("SELECT count(*) FROM lk_scored").fetchone() == (1,)
    assert xw["full"] != xw["moved"]


def test_a_partial_birth_date_in_another_year_is_not_the_same_person(tmp_path):
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "mother"),
            rec(
                "site_b",
                "daughter",
                given_name="Ottilie",
                birth_date=None,
                birth_year="1998",
                birth_month=None,
                phone=None,
            ),
        ],
    )
    assert xw["mother"] != xw["daughter"]


def test_partial_dates_give_year_tokens_only(tmp_path):
    con = duckdb.connect()
    rows = [
        rec("s", "full"),
        rec("s", "ym", birth_date=None),
        rec("s", "y", birth_date=None, birth_month=None),
    ]
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    build_tokens(con, KEY)
    tokens = {
        r[0]: r[1:]
        for r in con.execute("SELECT source_person_id, t_dob, t_ym, t_yob FROM lk_tokens").fetchall()
    }
    assert tokens["ym"] == (None, tokens["full"][1], tokens["full"][2])
    assert tokens["y"] == (None, None, tokens["full"][2])
