"""Linking hand-built person_pii rows: matches, non-matches, placeholders, stable ids, incremental."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, link
from rwe_assets.lib.linkage.tokens import PII_COLUMNS, build_tokens

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Robert",
    "family_name": "Okafor",
    "birth_date": dt.date(1970, 5, 17),
    "sex": "M",
    "ssn": "912-34-5678",
    "address_line": "12 Elm Street",
    "city": "Salem",
    "zip": "01970",
    "phone": "555-201-3344",
    "_batch_id": "b1",
}


def rec(source, pid, **changes):
    return {**BASE, "source_system": source, "source_person_id": pid, **changes}


def table(rows):
    """person_pii rows; birth dates as text (DATE and text both occur in tests, both are parsed)."""
    cell = lambda v: None if v is None else str(v)  # noqa: E731
    return pa.table({c: [cell(r.get(c)) for r in rows] for c in PII_COLUMNS if c != "maiden_name"})


def run(lake_dir, rows, **options):
    con = duckdb.connect()
    con.register("person_pii", table(rows))
    result = link(con, lake_dir, KEY, **options)
    return result, {(r["source_system"], r["source_person_id"]): r for r in result.crosswalk.to_pylist()}


def same(xw, a, b):
    return xw[a]["person_id"] == xw[b]["person_id"]


def test_variants_of_one_person_link(tmp_path):
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "a1"),
            rec("site_b", "b1", given_name="BOB", ssn=None, birth_date="1970-05-17"),  # nickname, text date
            rec("payer", "p1", family_name="Okafr", ssn=None),  # typo
            rec("site_b", "b2", birth_date=dt.date(1970, 5, 17), address_line="98 Pine Rd"),  # moved
        ],
    )
    ids = {xw[k]["person_id"] for k in xw}
    assert len(ids) == 1
    assert xw[("site_a", "a1")]["match_method"] == "deterministic"


def test_twins_and_household_members_stay_apart(tmp_path):
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "a1", given_name="Emma", sex="F", ssn="912-11-1111"),
            rec("site_a", "a2", given_name="Olivia", sex="F", ssn="912-22-2222"),  # twin: same dob, address
            rec("payer", "p2", given_name="Olivia", sex="F", ssn=None),  # her payer record, no SSN
            rec("payer", "p1", given_name="Emma", sex="F", ssn=None),
            rec(
                "site_a", "a3", birth_date=dt.date(1944, 2, 1), ssn="912-33-3333"
            ),  # Robert Sr., same address
        ],
    )
    assert same(xw, ("site_a", "a1"), ("payer", "p1"))
    assert same(xw, ("site_a", "a2"), ("payer", "p2"))
    assert not same(xw, ("site_a", "a1"), ("site_a", "a2"))
    assert len({r["person_id"] for r in xw.values()}) == 3


def test_placeholders_never_make_two_people_match(tmp_path):
    blank = {"ssn": "999-99-9999", "phone": "555-555-5555", "address_line": "UNKNOWN", "zip": "00000"}
    _, xw = run(
        tmp_path,
        [
            rec(
                "site_a", "a1", given_name="UNKNOWN", family_name="Unknown", birth_date="1900-01-01", **blank
            ),
            rec(
                "site_b", "b1", given_name="Unknown", family_name="UNKNOWN", birth_date="1900-01-01", **blank
            ),
            rec("site_a", "a2", given_name="Ann", family_name="Lee", birth_date="2019-13-05", **blank),
            rec("site_b", "b2", given_name="Cy", family_name="Lee", birth_date="2019-13-05", **blank),
        ],
    )
    assert len({r["person_id"] for r in xw.values()}) == 4
    assert {r["match_method"] for r in xw.values()} == {"singleton"}


def test_missing_fields_do_not_match_and_non_latin_names_match_exactly(tmp_path):
    nothing = {
        k: None for k in ("given_name", "family_name", "birth_date", "ssn", "address_line", "zip", "phone")
    }
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "a1", **nothing),
            rec("site_b", "b1", **nothing),
            rec("site_a", "c1", given_name="王芳", family_name="李", ssn=None, phone=None),
            rec("site_b", "c2", given_name="王芳", family_name="李", ssn=None, phone=None),
            rec(
                "site_b",
                "c3",
                given_name="Wang Fang",
                family_name="Li",
                ssn=None,
                phone=None,
                address_line=None,
            ),
        ],
    )
    assert not same(xw, ("site_a", "a1"), ("site_b", "b1"))
    assert same(xw, ("site_a", "c1"), ("site_b", "c2"))
    assert not same(xw, ("site_a", "c1"), ("site_b", "c3"))  # no transliteration across scripts


def test_ids_are_stable_new_batches_add_or_merge_and_history_records_merges(tmp_path):
    first_rows = [
        rec("site_a", "a1", ssn=None, phone=None),
        rec("site_b", "b1", given_name="Ann", family_name="Lee", birth_date="1990-02-03", sex="F", ssn=None),
        rec(
            "site_a",
            "a2",
            given_name="Robert",
            birth_date="1972-01-01",
            ssn=None,
            address_line="4 Bay Rd",
            phone=None,
        ),
    ]
    _, first = run(tmp_path, first_rows)
    _, again = run(tmp_path, list(reversed(first_rows)))  # rerun, other input order
    assert {k: v["person_id"] for k, v in again.items()} == {k: v["person_id"] for k, v in first.items()}
    # batch 2: a payer record bridging a1 and a2 (same SSN and birth date as a1? no: a chain of strong links)
    bridge = rec("payer", "p1", _batch_id="b2")  # full identifiers: links a1 (name, dob, address)
    newcomer = rec(
        "payer",
        "p2",
        given_name="Zed",
        family_name="Quinn",
        birth_date="2001-07-07",
        ssn=None,
        _batch_id="b2",
    )
    _, second = run(tmp_path, [*first_rows, bridge, newcomer])
    for record in first:
        assert second[record]["person_id"] == first[record]["person_id"]
    assert same(second, ("payer", "p1"), ("site_a", "a1"))
    assert second[("payer", "p2")]["person_id"] == max(r["person_id"] for r in first.values()) + 1
    assert second[("payer", "p2")]["first_seen_batch"] == "b2"
    assert second[("site_a", "a1")]["first_seen_batch"] == "b1"


def test_merge_is_recorded_and_keeps_the_oldest_id(tmp_path):
    # a: nickname, SSN, no contact; b: birth day off by one, no SSN: too little in common (review at most)
    a = rec("site_a", "a1", given_name="Bobby", phone=None, address_line=None, zip=None, city=None)
    b = rec("site_b", "b1", ssn=None, birth_date="1970-05-18")
    _, first = run(tmp_path, [a, b])
    assert not same(first, ("site_a", "a1"), ("site_b", "b1"))
    bridge = rec("payer", "p1", _batch_id="b2")  # same SSN and birth date as a, name and home as b
    _, second = run(tmp_path, [a, b, bridge])
    assert len({r["person_id"] for r in second.values()}) == 1
    assert second[("site_a", "a1")]["person_id"] == min(r["person_id"] for r in first.values())
    history = lake.read_table(lake.table_path(tmp_path, "linkage", "person_history")).to_pylist()
    assert [(h["event"], h["person_id"], h["new_person_id"]) for h in history] == [
        ("merge", max(r["person_id"] for r in first.values()), min(r["person_id"] for r in first.values()))
    ]


def test_clerical_decision_overrides_the_model(tmp_path):
    rows = [rec("site_a", "a1"), rec("site_b", "b1", ssn=None)]
    _, first = run(tmp_path, rows)
    assert same(first, ("site_a", "a1"), ("site_b", "b1"))
    decisions = pa.table(
        {"record_id_l": ["site_a|a1"], "record_id_r": ["site_b|b1"], "decision": ["non_match"],
         "decided_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]}
    )  # fmt: skip
    lake.append(lake.table_path(tmp_path, "linkage", "clerical_decisions"), decisions)
    _, second = run(tmp_path, rows)
    assert not same(second, ("site_a", "a1"), ("site_b", "b1"))
    assert second[("site_a", "a1")]["person_id"] == first[("site_a", "a1")]["person_id"]
    history = lake.read_table(lake.table_path(tmp_path, "linkage", "person_history")).to_pylist()
    assert [h["event"] for h in history] == ["split"]


def test_build_crosswalk_keeps_its_contract(tmp_path):
    con = duckdb.connect()
    con.register("person_pii", table([rec("site_a", "a1"), rec("site_b", "b1", given_name="Bobby")]))
    crosswalk = build_crosswalk(con, tmp_path, KEY)
    assert crosswalk.schema.names == [
        "source_system", "source_person_id", "person_id", "match_method", "match_probability", "first_seen_batch"
    ]  # fmt: skip
    assert crosswalk.schema.field("person_id").type == pa.int64()
    assert lake.read_table(lake.table_path(tmp_path, "linkage", "person_crosswalk")).num_rows == 2


def test_tokens_depend_on_the_key(tmp_path):
    con = duckdb.connect()
    con.register("person_pii", table([rec("site_a", "a1")]))
    build_tokens(con, "key-one-0123456789")
    one = con.execute("SELECT t_family, bf_family FROM lk_tokens").fetchone()
    build_tokens(con, "key-two-0123456789")
    two = con.execute("SELECT t_family, bf_family FROM lk_tokens").fetchone()
    assert one[0] != two[0] and one[1] != two[1]


@pytest.mark.parametrize("empty_key", [""])
def test_an_empty_key_is_refused(tmp_path, empty_key):
    con = duckdb.connect()
    con.register("person_pii", table([rec("site_a", "a1")]))
    with pytest.raises(Exception, match="non-empty"):
        build_tokens(con, empty_key)


def test_swapped_names_typos_and_email_link_but_twins_with_one_edit_names_do_not(tmp_path):
    no_ids = {"ssn": None, "phone": None, "address_line": None, "zip": None}
    _, xw = run(
        tmp_path,
        [
            rec("site_a", "a1", **no_ids),
            rec("site_b", "b1", given_name="Okafor", family_name="Robert", **no_ids),  # names swapped
            rec("payer", "p1", given_name="Rboert", **no_ids),  # transposition, same dob
            rec("lab", "l1", given_name=None, birth_date="1970-06-02", email="r.okafor@mail.test", **no_ids),
            rec(
                "lab",
                "l2",
                given_name="Robert",
                birth_date="1970-12-01",
                email="r.okafor@mail.test",
                **no_ids,
            ),
            # twins: one edit apart, same family name, birth date and address; different SSNs
            rec(
                "site_a",
                "t1",
                given_name="Mark",
                family_name="Lindqvist",
                birth_date="1990-01-02",
                ssn="912-44-4441",
            ),
            rec(
                "site_a",
                "t2",
                given_name="Marc",
                family_name="Lindqvist",
                birth_date="1990-01-02",
                ssn="912-44-4442",
            ),
        ],
    )
    assert same(xw, ("site_a", "a1"), ("site_b", "b1"))
    assert same(xw, ("site_a", "a1"), ("payer", "p1"))
    assert same(xw, ("lab", "l1"), ("lab", "l2"))  # the same email
    assert not same(xw, ("site_a", "t1"), ("site_a", "t2"))


def test_a_placeholder_email_never_links(tmp_path):
    nothing = {k: None for k in ("ssn", "phone", "address_line", "zip", "city")}
    _, xw = run(
        tmp_path,
        [
            rec(
                "site_a",
                "a1",
                given_name="Ann",
                family_name="Lee",
                birth_date=None,
                email="none@example.com",
                **nothing,
            ),
            rec(
                "site_b",
                "b1",
                given_name="Bo",
                family_name="Kim",
                birth_date=None,
                email="none@example.com",
                **nothing,
            ),
            rec(
                "site_a",
                "a2",
                given_name="Cy",
                family_name="Ng",
                birth_date=None,
                email="NOEMAIL@x.org",
                **nothing,
            ),
            rec(
                "site_b",
                "b2",
                given_name="Di",
                family_name="Wu",
                birth_date=None,
                email="noemail@x.org",
                **nothing,
            ),
        ],
    )
    assert len({r["person_id"] for r in xw.values()}) == 4


def test_linkage_tables_hold_no_email_or_name_in_clear(tmp_path):
    rows = [
        rec("site_a", "a1", email="robert.okafor@mail.test"),
        rec("site_b", "b1", given_name="Okafor", family_name="Robert", email="robertokafor.mail.test"),
    ]
    run(tmp_path, rows)
    clear = {"robert.okafor@mail.test", "robertokafor.mail.test", "robert.okafor", "robert", "okafor"}
    found = []
    for name in ("tokens", "pairs", "clerical_review", "person_crosswalk", "metrics"):
        table = lake.read_table(lake.table_path(tmp_path, "linkage", name))
        if table is None:
            continue
        text = str(
            table.drop_columns([c for c in table.column_names if "record_id" in c]).to_pylist()
        ).lower()
        found += [(name, v) for v in clear if v in text]
    found += [
        ("model.json", v) for v in clear if v in (tmp_path / "linkage" / "model.json").read_text().lower()
    ]
    assert found == []
