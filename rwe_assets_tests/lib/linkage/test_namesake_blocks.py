"""Blocking keys without a birth date (name, Soundex, a name with the city or postcode, the near-name
lists) drop a namesakes' block: more than tokens.NAMESAKE_BLOCK records that all state a birth year,
no two the same, are different people (the bench's 1 M records, 30 copies of one population, made
7 M such pairs without one true pair). A block with a record without a year, or two records of one
year, keeps its key; so do the keys that hold the birth year (docs/linkage.md, "Blocking")."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import model, tokens

KEY = "test-key-for-linkage-tests"
UNDATED_LISTS = ("k_gf_near", "k_city_near", "k_zip_near")


def _record(i: int, birth_date: str | None, family: str = "Quarrington") -> dict:
    return {
        "source_system": "site",
        "source_person_id": f"p{i:02d}",
        "_batch_id": "b1",
        "given_name": "Aurelia",
        "family_name": family,
        "birth_date": birth_date,
        "city": "Springfield",
        "zip": "01970",
    }


def _tokens(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("person_pii", pa.Table.from_pylist(rows))
    tokens.build_tokens(con, KEY)
    return con


def _held(con, column: str) -> int:
    return con.execute(f"SELECT count({column}) FROM lk_tokens").fetchone()[0]


def test_a_namesakes_block_loses_its_undated_keys():
    n = tokens.NAMESAKE_BLOCK + 1
    con = _tokens([_record(i, f"{1901 + 3 * i}-05-06") for i in range(n)])
    for column in (*tokens.UNDATED_KEYS, *UNDATED_LISTS):
        assert _held(con, column) == 0, column
    # the keys with the birth year, and Soundex + year, are other blocks: kept
    assert _held(con, "k_given_yob") == n and _held(con, "k_sdx_yob") == n


def test_a_block_with_a_shared_year_or_an_undated_record_keeps_its_keys():
    n = tokens.NAMESAKE_BLOCK + 1
    shared = [_record(i, f"{1901 + 3 * i}-05-06") for i in range(n - 1)] + [_record(n, "1901-11-30")]
    undated = [_record(i, f"{1901 + 3 * i}-05-06") for i in range(n - 1)] + [_record(n, None)]
    for rows in (shared, undated):
        con = _tokens(rows)
        for column in (*tokens.UNDATED_KEYS, *UNDATED_LISTS):
            assert _held(con, column) == n, column


def test_a_block_of_namesake_block_records_is_kept_and_compared():
    # at the threshold the block stays: a mistyped birth year of one of a few records is still compared
    n = tokens.NAMESAKE_BLOCK
    rows = [_record(i, f"{1901 + 3 * i}-05-06") for i in range(n)]
    con = _tokens(rows)
    assert _held(con, "k_names") == n and _held(con, "k_city_near") == n
    model.register_input(con)
    model.score(con, model.prior_settings(), "lk_model_input")
    assert con.execute("SELECT count(*) FROM lk_scored").fetchone()[0] == n * (n - 1) // 2
