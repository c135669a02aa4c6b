"""Each record's field tokens are the HMAC of their own field and value (a guard for rewrites of
tokens.sql that key values once per distinct value), the nickname table is loaded whole, and the
capped blocking keys never let a block grow past tokens.BLOCK_KEY_CAP (docs/linkage.md, "Tokens",
"Blocking")."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import tokens

KEY = "test-key-for-linkage-tests"
FIELDS = {  # token column -> (HMAC prefix, normalized value the record below gives)
    "t_ssn": ("ssn", "123450987"),
    "t_phone": ("phone", "6175550123"),
    "t_street": ("street", "12 main st"),
    "t_email": ("email", "ann.lee@mail.org"),
    "t_email_user": ("email-user", "ann.lee"),
}


def _person(i: int, **fields) -> dict:
    base = {
        "source_system": "site",
        "source_person_id": f"p{i}",
        "_batch_id": "b1",
        "given_name": "Ann",
        "family_name": "Lee",
        "birth_date": "1970-03-04",
        "sex": "F",
        "ssn": "123-45-0987",
        "phone": "(617) 555-0123",
        "address_line": "12 Main Street",
        "email": "Ann.Lee@mail.org",
    }
    return {**base, **fields}


def _tokens(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("person_pii", pa.Table.from_pylist(rows))
    tokens.build_tokens(con, KEY)
    return con


def test_record_field_tokens_equal_their_own_hmac():
    """Two records sharing every value, one holding none: the shared values' tokens are the HMAC of
    `field|value` (the prefixes keep fields apart), equal on both records; missing values give NULL."""
    empty = dict.fromkeys(("ssn", "phone", "address_line", "email"))
    con = _tokens([_person(0), _person(1), _person(2, **empty)])
    for column, (prefix, value) in FIELDS.items():
        expected = con.execute("SELECT lk_hmac(?)", [f"{prefix}|{value}"]).fetchone()[0]
        got = con.execute(f"SELECT {column} FROM lk_tokens ORDER BY source_person_id").fetchall()
        assert got == [(expected,), (expected,), (None,)], column
    # one value in two fields never gives one token: the email's user part is not the email
    row = con.execute("SELECT t_email, t_email_user, t_phone, t_ssn FROM lk_tokens LIMIT 1").fetchone()
    assert len(set(row)) == len(row)


def test_nickname_table_holds_every_form_once():
    con = _tokens([_person(0)])
    rows = con.execute("SELECT name, full_name FROM lk_forms ORDER BY ALL").fetchall()
    assert rows == sorted(tokens.nickname_forms())


def test_capped_key_is_null_for_every_record_above_the_cap():
    """BLOCK_KEY_CAP + 1 records of one full name (other birth dates) lose the name key; a name held by
    exactly BLOCK_KEY_CAP records keeps it, so its block is at most BLOCK_KEY_CAP records."""
    cap = tokens.BLOCK_KEY_CAP
    rows = [_person(i, birth_date=f"{1900 + i}-05-06", ssn=None) for i in range(cap + 1)]
    rows += [
        _person(100 + i, family_name="Quist", birth_date=f"{1900 + i}-07-08", ssn=None) for i in range(cap)
    ]
    con = _tokens(rows)
    held = dict(
        con.execute(
            "SELECT source_person_id LIKE 'p1__' AS quist, count(k_names) FROM lk_tokens GROUP BY ALL"
        ).fetchall()
    )
    assert held == {False: 0, True: cap}
    largest = con.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM lk_tokens WHERE k_names IS NOT NULL GROUP BY k_names)"
    ).fetchone()[0]
    assert largest == cap
