"""cluster.decide finds rule pairs by an equi-join of the tokens and computes the household guard on
the kept pairs only (issue 18: at a million records, joining every scored pair to its tokens took
30 s). Its decisions must equal those of the direct formulation: each scored pair joined to both
records' tokens, the rules and the guard evaluated on it, the pairs below REVIEW dropped."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage import cluster, model
from rwe_assets.lib.linkage.tokens import build_tokens

KEY = "test-key-for-linkage-tests"
BASE = {
    "given_name": "Mark",
    "family_name": "Okonkwo",
    "birth_date": "1970-05-17",
    "sex": "M",
    "ssn": "123-45-6780",
    "address_line": "12 Elm Street",
    "zip": "01970",
    "phone": "555-201-3344",
    "_batch_id": "b1",
}
COLUMNS = ("source_system", "source_person_id", *BASE)
# Records that make every branch of the rules and of the guard occur among their pairs.
VARIANTS = [
    {},
    {},  # same SSN and birth date: ssn_dob (and name_dob_sex: ssn_dob is named first)
    {"ssn": None},  # name_dob_sex, no SSN on one side
    {"ssn": "223-45-6780"},  # another SSN: no rule, a household conflict
    {"sex": "F", "ssn": None},  # another sex: no name rule
    {"given_name": "Samuel", "ssn": None},  # a twin: another first name, one household
    {"given_name": "Mrak", "ssn": None},  # a typo: no conflict
    {"birth_date": "1970-01-01", "ssn": None},  # a 1 January: no name rule
    {"family_name": "Smith", "address_line": "9 Oak Road", "phone": None, "ssn": None},
]
PROBABILITIES = (0.99, 0.7, 0.2)  # accepted, review, dropped unless a rule holds


def _con(probability: float) -> duckdb.DuckDBPyConnection:
    """lk_tokens of VARIANTS and lk_scored: every pair of them with `probability` and weights."""
    rows = [{**BASE, **v, "source_system": "s", "source_person_id": f"r{i}"} for i, v in enumerate(VARIANTS)]
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    build_tokens(con, KEY)
    model.register_input(con, "lk_tokens")
    ids = sorted(r[0] for r in con.execute("SELECT record_id FROM lk_tokens").fetchall())
    weights = {
        f"mw_{c}": 2.0 for c in ("given", "family", "dob", "sex", "ssn", "identifier", "contact", "email")
    }
    pairs = list(itertools.combinations(ids, 2))
    con.register(
        "scored_arrow",
        pa.table(
            {
                "record_id_l": [a for a, _ in pairs],
                "record_id_r": [b for _, b in pairs],
                "match_weight": [5.0] * len(pairs),
                "match_probability": [probability] * len(pairs),
                **{k: [v] * len(pairs) for k, v in weights.items()},
            }
        ),
    )
    con.execute("CREATE TEMP TABLE lk_scored AS SELECT * FROM scored_arrow")
    return con


def _direct(con) -> list[tuple]:
    """The direct formulation: every scored pair joined to its tokens (decide before issue 18)."""
    rule = " ".join(f"WHEN {sql} THEN '{name}'" for name, sql in cluster.DETERMINISTIC_RULES.items())
    return con.execute(
        f"""
        WITH ruled AS (
            SELECT s.*, CASE {rule} END AS rule, {cluster.HOUSEHOLD_CONFLICT} AS household_conflict
            FROM lk_scored s JOIN lk_tokens l ON l.record_id = s.record_id_l
                             JOIN lk_tokens r ON r.record_id = s.record_id_r
        )
        SELECT record_id_l, record_id_r, rule, household_conflict, CASE {cluster.DECISION_SQL} END
        FROM ruled WHERE rule IS NOT NULL OR match_probability >= {cluster.REVIEW} ORDER BY ALL
        """
    ).fetchall()


def _decided(con) -> list[tuple]:
    return con.execute(
        "SELECT record_id_l, record_id_r, rule, household_conflict, decision FROM lk_decided ORDER BY ALL"
    ).fetchall()


@pytest.mark.parametrize("probability", PROBABILITIES)
def test_decide_equals_the_direct_formulation(probability):
    con = _con(probability)
    cluster.decide(con, None)
    assert _decided(con) == _direct(con)


def test_every_branch_occurs():
    """The variants do exercise both rules, their precedence, the guard and the dropping."""
    con = _con(0.2)
    cluster.decide(con, None)
    rules = dict(con.execute("SELECT rule, count(*) FROM lk_decided GROUP BY ALL").fetchall())
    assert rules.get("ssn_dob", 0) >= 1 and rules.get("name_dob_sex", 0) >= 1 and None not in rules
    assert (
        con.execute("SELECT count(*) FROM lk_decided").fetchone()[0]
        < len(VARIANTS) * (len(VARIANTS) - 1) // 2
    )
    con = _con(0.99)
    cluster.decide(con, None)
    decided = _decided(con)
    assert {d[3] for d in decided} >= {True, False}
    assert {d[4] for d in decided} == {"match", "review"}


def test_a_reviewer_decision_keeps_a_dropped_pair_and_overrides():
    con = _con(0.2)
    ids = sorted(r[0] for r in con.execute("SELECT record_id FROM lk_tokens").fetchall())
    decisions = pa.table(
        {
            "record_id_l": [ids[8], ids[1]],  # a pair below REVIEW without rule; a rule pair
            "record_id_r": [ids[0], ids[0]],
            "decision": ["match", "non_match"],
            "decided_at": pa.array([1, 1], pa.int64()),
        }
    )
    cluster.decide(con, decisions)
    got = dict(
        (tuple(r[:2]), r[2:])
        for r in con.execute("SELECT record_id_l, record_id_r, decision, method FROM lk_decided").fetchall()
    )
    assert got[(ids[0], ids[8])] == ("match", "clerical")
    assert got[(ids[0], ids[1])] == ("non_match", "clerical")


def _linked_pair(tmp_path, left: dict, right: dict) -> tuple:
    """(decision, household_conflict) of two records of BASE differing by left/right, linked."""
    from rwe_assets.lib.linkage.crosswalk import link

    rows = [
        {**BASE, "ssn": None, **left, "source_system": "site_a", "source_person_id": "a"},
        {**BASE, "ssn": None, **right, "source_system": "site_b", "source_person_id": "b"},
    ]
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r.get(c) for r in rows] for c in COLUMNS}))
    link(con, tmp_path, KEY)
    return con.execute("SELECT decision, coalesce(household_conflict, false) FROM lk_pairs").fetchone()


def test_one_name_at_one_home_born_on_1_january_and_months_later_is_a_conflict(tmp_path):
    # the Robert McGees of 1 M generated records: one birth date moved to a 1 January by the replica
    decision, conflict = _linked_pair(tmp_path, {"birth_date": "1981-01-01"}, {"birth_date": "1981-05-20"})
    assert conflict is True and decision != "match"


def test_elsewhere_a_1_january_is_still_excused(tmp_path):
    # no street or phone in common: a 1 January may be a year-only date, no household conflict
    other_home = {"address_line": "9 Oak Road", "zip": "02139", "phone": None}
    _, conflict = _linked_pair(
        tmp_path, {"birth_date": "1981-01-01", "phone": None}, {"birth_date": "1981-05-20", **other_home}
    )
    assert conflict is False
