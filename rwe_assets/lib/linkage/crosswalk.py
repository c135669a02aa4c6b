"""Interim person crosswalk: exact matches of a keyed token only.

The linkage issue replaces the matching (probabilistic, typo-tolerant); the contract stays:
`linkage/person_crosswalk` maps (source_system, source_person_id) -> person_id (BIGINT) with
match_method, match_probability and first_seen_batch, and person ids never change once given.

Token: HMAC-SHA256 under the linkage key of normalized given name, family name, birth date and sex.
Normalization: case and accents folded, digits and punctuation removed (Synthea appends digits to
names), whitespace collapsed. A record missing any of the four fields gets no token: it stays alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import write_deltalake

from rwe_assets.lib import lake

DEMO_KEY = "rwe-assets-DEMO-linkage-key-NOT-SECRET"
_NOT_LETTERS = re.compile(r"[^a-z ]+")


def normalize_name(value: str | None) -> str | None:
    if not value:
        return None
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    cleaned = " ".join(_NOT_LETTERS.sub(" ", folded).split())
    return cleaned or None


def exact_token(key: bytes, given, family, birth_date, sex) -> str | None:
    parts = [normalize_name(given), normalize_name(family), str(birth_date) if birth_date else None]
    parts.append((sex or "").strip().upper()[:1] or None)
    if any(part is None for part in parts):
        return None
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()


def build_crosswalk(con: duckdb.DuckDBPyConnection, lake_dir: Path, key: str) -> pa.Table:
    """Tokens and crosswalk from staging.person_pii (registered in `con` as `person_pii`); writes
    lake/linkage/tokens and lake/linkage/person_crosswalk and returns the crosswalk."""
    pii = con.sql(
        "SELECT source_system, source_person_id, given_name, family_name, birth_date, sex, _batch_id FROM person_pii"
    ).to_arrow_table()
    secret = key.encode()
    tokens = [
        exact_token(secret, g, f, b, s)
        for g, f, b, s in zip(
            pii.column("given_name").to_pylist(),
            pii.column("family_name").to_pylist(),
            pii.column("birth_date").to_pylist(),
            pii.column("sex").to_pylist(),
            strict=True,
        )
    ]
    token_table = pa.table(
        {
            "source_system": pii.column("source_system"),
            "source_person_id": pii.column("source_person_id"),
            "token_exact": pa.array(tokens, pa.string()),
            "batch_id": pii.column("_batch_id"),
        }
    )
    write_deltalake(
        str(lake.table_path(lake_dir, "linkage", "tokens")),
        token_table,
        mode="overwrite",
        schema_mode="overwrite",
    )
    crosswalk = _assign_persons(con, lake_dir, token_table)
    write_deltalake(
        str(lake.table_path(lake_dir, "linkage", "person_crosswalk")),
        crosswalk,
        mode="overwrite",
        schema_mode="overwrite",
    )
    return crosswalk


def _assign_persons(con, lake_dir: Path, tokens: pa.Table) -> pa.Table:
    """Records already in the crosswalk keep their person; a new record joins the person of an
    existing record with the same token, else a new person (next id, in token/record order)."""
    previous = lake.read_table(lake.table_path(lake_dir, "linkage", "person_crosswalk"))
    con.register("_tokens", tokens)
    if previous is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _previous (source_system VARCHAR, source_person_id VARCHAR, "
            "person_id BIGINT, first_seen_batch VARCHAR)"
        )
    else:
        con.register("_previous_arrow", previous)
        con.execute("CREATE OR REPLACE TEMP TABLE _previous AS SELECT * FROM _previous_arrow")
    result = con.sql(
        """
        WITH records AS (
            SELECT t.*, coalesce(t.token_exact, 'alone|' || t.source_system || '|' || t.source_person_id) AS cluster,
                   p.person_id AS known_id, p.first_seen_batch AS known_batch
            FROM _tokens t LEFT JOIN _previous p USING (source_system, source_person_id)
        ),
        clusters AS (
            SELECT cluster, min(known_id) AS known_id, count(*) AS size, min(batch_id) AS first_batch,
                   min(source_system || '|' || source_person_id) AS first_record
            FROM records GROUP BY cluster
        ),
        numbered AS (
            SELECT *, coalesce(known_id, (SELECT coalesce(max(person_id), 0) FROM _previous)
                   + row_number() OVER (PARTITION BY known_id IS NULL ORDER BY first_record)) AS person_id
            FROM clusters
        )
        SELECT r.source_system, r.source_person_id, CAST(coalesce(r.known_id, n.person_id) AS BIGINT) AS person_id,
               CASE WHEN n.size > 1 THEN 'deterministic' ELSE 'singleton' END AS match_method,
               1.0 AS match_probability,
               coalesce(r.known_batch, r.batch_id) AS first_seen_batch
        FROM records r JOIN numbered n USING (cluster)
        ORDER BY person_id, source_system, source_person_id
        """
    ).to_arrow_table()
    return result
