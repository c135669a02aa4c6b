"""Tombstones: keyed tokens of erased persons, which refuse any later record of theirs.

A tombstone is HMAC-SHA256 with the tombstone key (lib/linkage/keys.tombstone_key: RWE_TOMBSTONE_KEY,
else the linkage key) over an identity of the person, never an identifier in clear: the source
record (source system and source person id), the call name, family name and birth date, the SSN
with the birth date, a document the person was issued (national id, licence, passport) with the birth
date, and a record number (MRN, member id) with the system that assigned it, each normalized by the linkage's own macros (lib/sql/linkage/normalize.sql), so a
record sent again in any file, by any source that states the same identity, computes the same token.
They are prefixed with "tombstone|", so no tombstone equals a linkage token. The table
(<lake>/governance/tombstones) holds kind, token, erasure id and time.

Staging is the earliest layer that can compute them (raw keeps each format's text; staging has every
source's persons in one shape): lib/staging/build.py calls refuse_erased() after the candidates are
read, and every candidate row of a matching person, in every table, is quarantined as ERASED_PERSON
with its record key cleared, so the quarantine names no identifier of theirs and nothing of theirs
reaches linkage or the CDM. Genomics staging, which runs after it, refuses the sample manifest's
persons the same way (register_refused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.linkage.tokens import key_pads, register_macros

REASON = "ERASED_PERSON"
KEY_CHECK = "key_check"  # the kind of the one row that tells which key made the tombstones (check_key)
TABLE = ("governance", "tombstones")
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("token", pa.string()),
        ("erasure_id", pa.string()),
        ("erased_at", pa.timestamp("us", tz="UTC")),
    ]
)
# The identity fields a relation passed to tokens_sql() may hold; absent ones count as NULL.
IDENTITY_COLUMNS = ("source_system", "source_person_id", "given_name", "family_name", "birth_date", "ssn")
IDENTIFIERS_TYPE = "STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[]"  # staging.person_pii.identifiers


def tombstone_path(lake_dir: Path) -> Path:
    return lake.table_path(lake_dir, *TABLE)


def register(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """The linkage's normalization macros and tb_hmac(msg): HMAC-SHA256 hex with `key` (RFC 2104 pads
    written in as constants; a macro takes no bound parameters)."""
    register_macros(con)
    inner, outer = key_pads(key)
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO tb_hmac(msg) AS sha256(unhex('{outer.hex()}') "
        f"|| unhex(sha256(unhex('{inner.hex()}') || encode(msg))))"
    )


def tokens_sql(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """SELECT source_system, source_person_id, kind, token for every record of `relation` (NULL tokens
    left out: a record without an SSN gives no ssn_dob token). register() must have run."""
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    columns = [c if c in present else f"NULL::VARCHAR AS {c}" for c in IDENTITY_COLUMNS]
    columns.append("identifiers" if "identifiers" in present else f"NULL::{IDENTIFIERS_TYPE} AS identifiers")
    return f"""
        WITH src AS (SELECT {", ".join(columns)} FROM {relation}),
        norm AS (
            SELECT source_system, source_person_id, lk_first_word(given_name) AS given,
                   lk_name(family_name) AS family, lk_date(birth_date, current_date) AS dob, lk_ssn(ssn) AS ssn,
                   identifiers
            FROM src WHERE source_system IS NOT NULL AND source_person_id IS NOT NULL
        ),
        typed AS (
            SELECT source_system, source_person_id, dob, lk_id_type(i.type) AS type,
                   lk_id_system(i.system) AS system, lk_id_value(lk_id_type(i.type), i.value) AS value
            FROM (SELECT source_system, source_person_id, dob, unnest(identifiers) AS i FROM norm)
        ),
        kinds AS (
            SELECT source_system, source_person_id, 'record' AS kind,
                   'record|' || source_system || '|' || source_person_id AS msg FROM norm
            UNION ALL
            SELECT source_system, source_person_id, 'name_dob', 'name_dob|' || given || '|' || family || '|' || dob
            FROM norm WHERE given IS NOT NULL AND family IS NOT NULL AND dob IS NOT NULL
            UNION ALL
            SELECT source_system, source_person_id, 'ssn_dob', 'ssn_dob|' || ssn || '|' || dob
            FROM norm WHERE ssn IS NOT NULL AND dob IS NOT NULL
            UNION ALL  -- a document under any issuer (as linkage compares them), with the birth date
            SELECT source_system, source_person_id, 'document_dob', 'document_dob|' || type || '|' || value || '|' || dob
            FROM typed WHERE lk_id_document(type) AND value IS NOT NULL AND dob IS NOT NULL
            UNION ALL  -- a record number is unique only within the system that assigned it; a number of
            -- no declared kind ('other') may be shared (a policy or household number): not one person's
            SELECT source_system, source_person_id, 'record_number',
                   'record_number|' || type || '|' || system || '|' || value
            FROM typed WHERE type IN ('mrn', 'member_id') AND system IS NOT NULL AND value IS NOT NULL
        )
        SELECT source_system, source_person_id, kind, tb_hmac('tombstone|' || msg) AS token FROM kinds
    """


def add(lake_dir: Path, tokens: pa.Table, erasure_id: str | None = None) -> int:
    """Append the distinct (kind, token) pairs of `tokens` not yet held, under `erasure_id` or, when
    None, each row's own erasure_id column; returns how many were new."""
    held = lake.read_table(tombstone_path(lake_dir), columns=["kind", "token"])
    ids = [erasure_id] * tokens.num_rows if erasure_id else tokens.column("erasure_id").to_pylist()
    rows = zip(tokens.column("kind").to_pylist(), tokens.column("token").to_pylist(), ids, strict=True)
    seen = set(zip(*(held.column(c).to_pylist() for c in ("kind", "token")), strict=True)) if held else set()
    new = {}
    for kind, token, owner in rows:
        if (kind, token) not in seen:
            new.setdefault((kind, token), owner)
    if not new:
        return 0
    pairs = sorted(new)
    now = dt.datetime.now(dt.UTC)
    table = pa.table(
        {
            "kind": [k for k, _ in pairs],
            "token": [t for _, t in pairs],
            "erasure_id": [new[p] for p in pairs],
            "erased_at": [now] * len(pairs),
        },
        schema=SCHEMA,
    )
    lake.write(tombstone_path(lake_dir), table, mode="append")
    return len(pairs)


def register_refused(
    con: duckdb.DuckDBPyConnection, lake_dir: Path, relation: str, name: str, key: str | None = None
) -> int:
    """TEMP TABLE `name`(source_system, source_person_id, erasure_id): the records of `relation` whose
    record or identity a tombstone holds. A record refused for its identity alone (an erased person
    sent again under a new id) is remembered by a 'record' tombstone of its own, so layers that see
    only the record (genomics' sample manifest) refuse it too. Returns the records refused."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} "
        "(source_system VARCHAR, source_person_id VARCHAR, erasure_id VARCHAR)"
    )
    held = lake.read_table(tombstone_path(lake_dir), columns=["kind", "token", "erasure_id"])
    if held is None or held.num_rows == 0:
        return 0
    key = key or _lake_key(lake_dir)
    check_key(lake_dir, key)
    register(con, key)
    con.register("tb_held", held)
    con.execute(
        f"INSERT INTO {name} SELECT source_system, source_person_id, min(h.erasure_id) "
        f"FROM ({tokens_sql(con, relation)}) t JOIN tb_held h USING (kind, token) GROUP BY ALL"
    )
    con.unregister("tb_held")
    learned = con.sql(
        f"SELECT kind, token, erasure_id FROM ({tokens_sql(con, name)}) JOIN {name} USING "
        "(source_system, source_person_id) WHERE kind = 'record'"
    ).to_arrow_table()
    add(lake_dir, learned)
    return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


def refuse_erased(con: duckdb.DuckDBPyConnection, lake_dir: Path, key: str | None = None) -> int:
    """Quarantine (REASON) every staging candidate of a person a tombstone names: candidates of tables
    cand_<name> with a source_person_id, matched by source system and source person id to a record of
    cand_person_pii or cand_person_source whose token is held. Returns the persons refused."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW tb_records AS SELECT * FROM cand_person_pii "
        "UNION ALL BY NAME SELECT source_system, source_person_id FROM cand_person_source"
    )
    refused = register_refused(con, lake_dir, "tb_records", "tb_refused", key)
    if not refused:
        return 0
    tables = [
        name.removeprefix("cand_")
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE table_name LIKE 'cand\\_%' ESCAPE '\\' "
            "AND column_name = 'source_person_id'"
        ).fetchall()
    ]
    for table in tables:
        con.execute(
            f"UPDATE cand_{table} c SET _reason = '{REASON}', _reason_field = NULL, record_key = NULL "
            "FROM tb_refused r WHERE c.source_system = r.source_system AND c.source_person_id = r.source_person_id"
        )
    return refused


def key_check(key: str) -> str:
    """Tells whether a key is the one the tombstones were made with, without revealing it."""
    return hmac.new(key.encode(), b"rwe tombstone key check", hashlib.sha256).hexdigest()


def check_key(lake_dir: Path, key: str, record: bool = False) -> None:
    """Raise ConfigError when the tombstones hold the check of another key (under another key they
    would refuse no one); with `record`, store this key's check when none is held (a first erasure)."""
    held = lake.read_table(tombstone_path(lake_dir), columns=["kind", "token"])
    checks = {r["token"] for r in held.to_pylist() if r["kind"] == KEY_CHECK} if held is not None else set()
    if checks and key_check(key) not in checks:
        raise ConfigError(
            "the erasure tombstones were made with another key than the one configured "
            "(RWE_TOMBSTONE_KEY, else the linkage key): set RWE_TOMBSTONE_KEY to the key they were made with, "
            "or erased persons would be staged again; nothing changed"
        )
    if record and not checks:
        row = {
            "kind": KEY_CHECK,
            "token": key_check(key),
            "erasure_id": "",
            "erased_at": dt.datetime.now(dt.UTC),
        }
        lake.write(tombstone_path(lake_dir), pa.Table.from_pylist([row], SCHEMA), mode="append")


def _lake_key(lake_dir: Path) -> str:
    """The tombstone key of the data directory holding `lake_dir`."""
    from rwe_assets.lib.linkage.keys import tombstone_key
    from rwe_assets.settings import Settings

    return tombstone_key(Settings.from_env(data_dir=lake.state_dir(lake_dir)))
