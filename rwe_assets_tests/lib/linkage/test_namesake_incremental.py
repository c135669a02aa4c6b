"""Blocking over name-only keys must not depend on the run's other records in a way an incremental
run cannot follow (review of 4563a2b, whose NAMESAKE_BLOCK rule was taken out for it): an
incremental run scores only new records and keeps the old pairs, so a key dropped or put back by a
later batch made it differ from a full run; and a true pair whose birth year is mistyped lost its
only block once unrelated namesakes of other years joined it (docs/linkage.md, "Blocking")."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import crosswalk, model, tokens

KEY = "test-key-for-linkage-tests"


def _john(i: int, birth_date: str, batch: str = "b1") -> dict:
    """John Smith of Springfield: another house number each, no SSN, phone or email."""
    return {"source_system": "site", "source_person_id": f"p{i:02d}", "_batch_id": batch, "given_name": "John",
            "family_name": "Smith", "birth_date": birth_date, "sex": "M", "address_line": f"{10 + i} Elm Street",
            "city": "Springfield", "zip": "01970", "email": None, "phone": None, "ssn": None}  # fmt: skip


# p00 and p01: one man, his birth year mistyped once (one apart); p02...: namesakes of other years
PAIR = [_john(0, "1980-03-04"), _john(1, "1981-03-04")]
NAMESAKES = [_john(i, f"{1930 + 7 * i}-0{1 + i % 9}-11") for i in range(2, 7)]


def _persons(lake_dir, rows: list[dict]) -> set[frozenset]:
    con = duckdb.connect()
    con.register("person_pii", pa.Table.from_pylist(rows))
    result = crosswalk.link(con, lake_dir, KEY, today=dt.date(2026, 1, 1))
    groups: dict[str, set] = {}
    for row in result.crosswalk.to_pylist():
        groups.setdefault(row["person_id"], set()).add(row["source_person_id"])
    return {frozenset(g) for g in groups.values()}


def _incremental_equals_full(tmp_path, first: list[dict], second: list[dict]) -> set[frozenset]:
    _persons(tmp_path / "incremental", first)
    incremental = _persons(tmp_path / "incremental", second)
    assert incremental == _persons(tmp_path / "full", second)
    return incremental


def test_a_growing_namesake_block_links_incrementally_as_in_a_full_run(tmp_path):
    first = PAIR + NAMESAKES[:3]  # five records
    second = first + [{**NAMESAKES[3], "_batch_id": "b2"}]  # a sixth namesake of another year
    assert frozenset({"p00", "p01"}) in _incremental_equals_full(tmp_path, first, second)


def test_a_namesake_sharing_a_year_links_incrementally_as_in_a_full_run(tmp_path):
    first = PAIR + NAMESAKES[:4]  # six records, six years
    second = first + [_john(9, NAMESAKES[0]["birth_date"][:4] + "-12-12", "b2")]
    assert frozenset({"p00", "p01"}) in _incremental_equals_full(tmp_path, first, second)


def test_a_year_typo_pair_among_namesakes_is_compared():
    typo = [_john(0, "1980-03-04"), _john(1, "1908-03-04")]  # two digits swapped
    for rows in (typo + NAMESAKES[:4], typo + NAMESAKES[:5]):  # six and seven records
        con = duckdb.connect()
        con.register("person_pii", pa.Table.from_pylist(rows))
        tokens.build_tokens(con, KEY)
        model.register_input(con)
        model.score(con, model.prior_settings(), "lk_model_input")
        scored = {
            frozenset(p) for p in con.execute("SELECT record_id_l, record_id_r FROM lk_scored").fetchall()
        }
        assert frozenset({"site|p00", "site|p01"}) in scored, len(rows)
