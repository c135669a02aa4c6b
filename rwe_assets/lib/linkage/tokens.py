"""Keyed tokens of each source person: the only form in which identifiers leave staging.

Per record (docs/linkage.md, "Tokens"): the first 60 bits of HMAC-SHA256(key, field | value) of each
normalized field (t_*), a hash of field tokens' combinations for blocking and deterministic rules (k_*), lists of
tokens of near values (names one edit apart, the birth date with one digit masked, the
neighbouring months), and keyed Bloom filters of the q-grams of given name, family name,
street and email (bf_*), compared by Dice similarity so that a typo lowers the similarity instead of
breaking agreement. Birth dates appear as tokens only, never in clear. Sex stays in clear (OMOP
keeps it). All of it is computed in DuckDB: HMAC from its sha256; tokens of repeating values (names,
dates, cities) and Bloom filters once per distinct value, far fewer than records.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_loader import SqlFolder

HERE = Path(__file__).resolve().parent
# normalize (macros), normalized, tokens
LINKAGE_SQL = SqlFolder(HERE.parent / "sql" / "linkage", "lib/sql/linkage")
NICKNAMES = HERE / "data" / "nicknames" / "names.csv"
PII_COLUMNS = (
    "source_system",
    "source_person_id",
    "given_name",
    "family_name",
    "maiden_name",
    "birth_date",
    "birth_year",
    "birth_month",
    "sex",
    "ssn",
    "drivers_license",
    "passport",
    "address_line",
    "city",
    "state",
    "zip",
    "phone",
    "email",
    "identifiers",
    "_batch_id",
)
# Types of the PII columns an input may lack when their NULL must still be typed (lists are unnested).
PII_TYPES = {"identifiers": "STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[]"}
# field -> (bits, hash functions); street lines and emails have about twice the q-grams of a name
BLOOM = {"given": (252, 8), "family": (252, 8), "street": (504, 8), "email": (504, 8)}
WORD = 63  # bits per BIGINT word of a Bloom filter (the sign bit unused)
TOKEN_COLUMNS = (
    "t_given",
    "t_given_first",
    "t_family",
    "t_maiden",
    "t_dob",
    "t_dob_swap",
    "t_ym",
    "t_yob",
    "t_ydate",
    "t_ssn",
    "t_phone",
    "t_street",
    "t_zip",
    "t_city",
    "t_email",
    "t_email_user",
    "k_name_dob",
    "k_ssn_dob",
    "k_given_dob_zip",
    "k_name_yob",
    "k_dob_init",
    "k_dob_swap_init",
)
# Lists of tokens (compared with list_has_any / list_contains) and Bloom filters.
LIST_COLUMNS = (
    "t_given_forms",
    "t_dob_digit",
    "t_ym_near",
    *(f"t_{kind}_{side}" for kind in ("id", "idnear", "idkind") for side in ("offer", "accept")),
)
# Tokens of the names of this run one edit apart: not part of a record's fingerprint (they change when
# another record brings a new name) but recomputed on every run.
NEAR_COLUMNS = ("t_given_near", "t_family_near")
BLOOM_COLUMNS = tuple(f"bf_{field}" for field in BLOOM)
# Blocking keys of one or two common fields (name only, Soundex + initial, birth date alone, a name
# and the city, Soundex or a name with the birth year, postcode with the family name or the
# initial): a key held by more than BLOCK_KEY_CAP records of a run is set to NULL for all of
# them, so a common name cannot make a block of thousands; like the near tokens they depend on the
# run and are left out of the fingerprint.
CAPPED_COLUMNS = (
    "k_names",
    "k_sdx_init",
    "k_dob",
    "k_family_city",
    "k_given_city",
    "k_sdx_yob",
    "k_given_yob",
    "k_family_yob",
    "k_zip_family",
    "k_zip_init",
)
# tokens.sql caps the blocking lists t_email_near, k_gf_near, k_city_near and k_zip_near member by
# member at BLOCK_KEY_CAP (bound as $cap); like the capped keys they are left out of the fingerprint.
BLOCK_KEY_CAP = 30


def key_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC inner and outer pads (RFC 2104) so DuckDB computes HMAC-SHA256 with two sha256 calls."""
    secret = key.encode()
    if not secret:
        raise ConfigError("linkage key: expected a non-empty key, found an empty one")
    if len(secret) > 64:
        secret = hashlib.sha256(secret).digest()
    block = secret.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def nickname_forms() -> list[tuple[str, str]]:
    """(name, full name it may stand for), every full name also standing for itself, from the public
    nickname list in data/nicknames/ (Apache-2.0, see its README): not the generator's catalogue, so
    the linkage is not fitted to the generator's own nicknames."""
    pairs: set[tuple[str, str]] = set()
    with NICKNAMES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["relationship"] != "has_nickname":
                raise ConfigError(
                    f"{NICKNAMES.name}: expected relationship has_nickname, found {row['relationship']!r}"
                )
            _add_family(pairs, row["name1"], [row["name2"]])
    return sorted(pairs)


def _add_family(pairs: set[tuple[str, str]], full: str, shorts: list[str]) -> None:
    full = full.strip().lower()
    pairs.add((full, full))
    pairs.update((short.strip().lower(), full) for short in shorts)


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    LINKAGE_SQL.run(con, "normalize")


def build_tokens(
    con: duckdb.DuckDBPyConnection, key: str, today: dt.date | None = None, source: str = "person_pii"
) -> None:
    """Create TEMP TABLE lk_tokens (one row per source record, tokens only) from the PII relation
    `source` (columns of staging.person_pii; any of them may be absent)."""
    register_macros(con)
    _register_hmac(con, key)
    forms = nickname_forms()
    # one statement with two list parameters: executemany ran one INSERT per form (3,842; ~1.7 s)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_forms AS SELECT unnest(?::VARCHAR[]) AS name, "
        "unnest(?::VARCHAR[]) AS full_name",
        [[name for name, _ in forms], [full for _, full in forms]],
    )
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = ", ".join(
        c if c in present else f"CAST(NULL AS {PII_TYPES[c]}) AS {c}" if c in PII_TYPES else f"NULL AS {c}"
        for c in PII_COLUMNS
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW lk_pii AS SELECT {columns} FROM {source}")
    LINKAGE_SQL.run(con, "normalized", values={"today": today or dt.date.today()})
    _bloom_filters(con)
    LINKAGE_SQL.run(con, "tokens", values={"cap": BLOCK_KEY_CAP})
    con.execute("DROP TABLE lk_normalized")
    cap_keys(con)


def cap_keys(con: duckdb.DuckDBPyConnection, cap: int = BLOCK_KEY_CAP) -> None:
    """NULL every CAPPED_COLUMNS key of lk_tokens that more than `cap` records hold."""
    for column in CAPPED_COLUMNS:
        con.execute(
            f"UPDATE lk_tokens SET {column} = NULL WHERE {column} IN "
            f"(SELECT {column} FROM lk_tokens GROUP BY {column} HAVING count(*) > {cap})"
        )


def _register_hmac(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Macros lk_hmac_hex(msg) and lk_hmac(msg) (its first 60 bits as BIGINT). The pads are written
    into the macro as hex constants (a macro cannot take bound parameters, and lambdas cannot hold
    subqueries); temp macros live only in this connection."""
    inner, outer = key_pads(key)
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO lk_hmac_hex(msg) AS sha256(unhex('{outer.hex()}') "
        f"|| unhex(sha256(unhex('{inner.hex()}') || encode(msg))))"
    )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO lk_hmac(msg) AS "
        "CASE WHEN msg IS NOT NULL THEN CAST('0x' || left(lk_hmac_hex(msg), 15) AS BIGINT) END"
    )


def _bloom_filters(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP TABLE lk_bloom(field, value, words): a keyed Bloom filter per distinct normalized value,
    as a list of 63-bit words (BIGINT: Delta has no unsigned type; bit i of the filter is bit i % 63
    of word i // 63). Bigrams of the padded value; bit j of a bigram = (h1 + j*h2) mod m with h1, h2
    from its HMAC (double hashing), so without the key the bit pattern of a q-gram cannot be computed.
    Each distinct bigram's bits are computed once, as words, and a value's filter is their OR."""
    most = max(-(-bits // WORD) for bits, _ in BLOOM.values())
    spec = " UNION ALL ".join(f"SELECT '{f}' AS field, {m} AS m, {k} AS k" for f, (m, k) in BLOOM.items())
    values = " UNION ALL ".join(f"SELECT '{f}' AS field, {f} AS value FROM lk_normalized" for f in BLOOM)
    mask_words = ", ".join(
        f"bit_or(CASE WHEN bit // {WORD} = {i} THEN 1::BIGINT << CAST(bit % {WORD} AS INTEGER) ELSE 0 END)"
        for i in range(most)
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lk_bloom_grams AS
        WITH vals AS (SELECT DISTINCT field, value FROM ({values}) WHERE value IS NOT NULL)
        SELECT field, value, substr('_' || value || '_', i, 2) AS gram
        FROM (SELECT field, value, unnest(range(1, length(value) + 2)) AS i FROM vals)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lk_bloom_masks AS
        WITH hashed AS (
            SELECT field, gram, lk_hmac_hex('bloom|' || field || '|' || gram) AS h
            FROM (SELECT DISTINCT field, gram FROM lk_bloom_grams)
        ),
        bits AS (
            SELECT field, gram, (h1 + i * h2) % m AS bit
            FROM (
                SELECT g.field, g.gram, s.m, unnest(range(s.k)) AS i,
                       CAST(('0x' || h[1:7]) AS BIGINT) AS h1, CAST(('0x' || h[8:14]) AS BIGINT) | 1 AS h2
                FROM hashed g JOIN ({spec}) s USING (field)
            )
        )
        SELECT field, gram, [{mask_words}] AS words FROM bits GROUP BY field, gram
        """
    )
    per_field = " UNION ALL ".join(
        f"SELECT field, value, [{', '.join(f'bit_or(words[{i + 1}])' for i in range(-(-bits // WORD)))}] AS words "
        f"FROM lk_bloom_grams JOIN lk_bloom_masks USING (field, gram) WHERE field = '{field}' GROUP BY field, value"
        for field, (bits, _) in BLOOM.items()
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE lk_bloom AS {per_field}")
    con.execute("DROP TABLE lk_bloom_grams; DROP TABLE lk_bloom_masks")
