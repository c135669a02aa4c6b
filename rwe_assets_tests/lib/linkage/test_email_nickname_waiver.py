"""The email waiver of conflict-aware clustering (conflicts.STABLE_AGREEMENT): groups agreeing on the full
birth date and the first given name are one person whose email changed. A nickname is the same first
name there (Bill and William, Bob and Robert): the relation is the direct one of the nickname list,
as in the comparisons, so two full names both listed under one nickname (Robert, William) are not."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.tokens import build_tokens
from rwe_assets_tests.lib.linkage.test_conflict_clustering import _chain, _clusters

KEY = "test-key-for-linkage-tests"
DOB, YDATE, YOB = 19850304, 19850101, 1985


def _first_name_tokens(*names: str) -> dict[str, tuple[int, list[int]]]:
    """name -> (t_given_first, t_given_forms) as tokenize computes them."""
    rows = [{"source_system": "s", "source_person_id": n, "given_name": n, "family_name": "Bennett",
             "birth_date": "1985-03-04", "_batch_id": "b1"} for n in names]  # fmt: skip
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r[c] for r in rows] for c in rows[0]}))
    build_tokens(con, KEY)
    return {
        pid.split("|")[-1]: (first, forms)
        for pid, first, forms in con.execute(
            "SELECT record_id, t_given_first, t_given_forms FROM lk_tokens"
        ).fetchall()
    }


def _era(prefix: str, email: str, first: tuple[int, list[int]], sex: str | None = None) -> dict:
    """Three records of one person in one email era, born on DOB, without an SSN."""
    return {f"{prefix}{i}": (DOB, YDATE, YOB, None, email, first[0], first[1], sex) for i in range(3)}


def _link(records: dict):
    return _clusters(records, [*_chain("a"), *_chain("b"), ("a2", "b0", 14.0, "probabilistic")])


def test_a_nickname_is_the_same_first_name_for_the_email_waiver():
    tokens = _first_name_tokens("Bill", "William")
    # Bill stands for Robert, William and more: the waiver needs both groups' sex (conflicts._same_first_name)
    era_a, era_b = _era("a", "tok-old", tokens["Bill"], "m"), _era("b", "tok-new", tokens["William"], "m")
    clusters, decided = _link(era_a | era_b)
    assert len(set(clusters.values())) == 1
    assert decided[("a2", "b0")] == ("match", None)
    # either way round: the nickname's group may be the larger one
    clusters, _ = _link(
        _era("a", "tok-old", tokens["William"], "m") | _era("b", "tok-new", tokens["Bill"], "m")
    )
    assert len(set(clusters.values())) == 1


def test_two_full_names_listed_under_one_nickname_keep_the_email_conflict():
    # bill -> robert and bill -> william in the list: Robert and William born one day are twins
    tokens = _first_name_tokens("Robert", "William")
    era_a, era_b = _era("a", "tok-a", tokens["Robert"], "m"), _era("b", "tok-b", tokens["William"], "m")
    clusters, decided = _link(era_a | era_b)
    assert clusters["a0"] != clusters["b0"]
    assert decided[("a2", "b0")] == ("review", "conflict_email")
