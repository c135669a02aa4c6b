"""Record lifecycle in staging: which version of each source record is current, and which are retired.

Staging is rebuilt from every current raw file, so a record sent in several batches has several
candidate rows; the staged tables hold only its current state. A candidate is a *version* of its record
when it passes validation, or when its only failure is a status reason (STATUS_REASONS: the source says
the record is not, or no longer, a fact). Per table, in this order:

1. `number_natural_key_collisions`: a natural record key (built from fields that do not change on
   correction, for sources without ids: Synthea's PATIENT, ENCOUNTER, CODE, START) can be shared by
   different records of one batch (two prescriptions of one drug started together). Such rows get
   the key `<key>#2`, `<key>#3`, ... in file order; identical copies keep one key and merge later.
2. `retire_absent`: a version is retired when a newer batch speaks for its scope without it:
   - snapshot sources (`extract: snapshot`): the scope is the person and raw entity; the latest batch
     holding both the person and a file of that entity is the person's complete record of it, so an
     older row whose key it lacks is retired ('ABSENT_FROM_SNAPSHOT'). Persons a batch does not hold
     are untouched.
   - every source: the scope is the source record, the part of record_key before the first '#' (a
     claim, a FHIR resource, a colliding natural key): a source record that stages as several rows
     (claim lines, Observation components) is replaced whole, so a row its newer version no longer
     has is retired ('ABSENT_FROM_NEWER_VERSION'). Which version is newer: NEWEST_FIRST below.
   In an incremental run (lib/staging/incremental.py) a staged newest version's retirements of staged
   rows are applied already (the candidates hold only part of a staged batch); rows of a new batch
   older than it (an old version re-sent) are retired as in a full build.
3. `resolve_versions`: among the remaining versions of one key, the newest wins. A version is stale
   when an earlier batch of its key states a later version instant `_version_at` (FHIR
   meta.lastUpdated; a DELETE's Bundle's) than its own (HIGH_WATER): an old version re-sent. Stale
   versions never win; among the others the later batch, then the later instant, then ingest time,
   file and line (NEWEST_FIRST). The rule compares pairs, so a version stating no instant changes no
   other's order. The winner keeps, as its staged `_version_at`, the latest instant of its key (an
   incremental run compares new versions with that alone: lib/staging/incremental_scope.py). Identical
   older copies merge ('DUPLICATE_IDENTICAL'); a differing stale version is 'STALE_VERSION', another
   of an earlier batch or with an older instant in the winner's batch 'SUPERSEDED' (both merge:
   counted, they change nothing); another differing row of the same batch is quarantined
   ('DUPLICATE_ID').
   A winner with a status reason stages nothing: it is retired with that reason (an 'entered-in-error'
   resource withdraws the record it corrects; a void claim cancels the claim; a FHIR Claim its
   ExplanationOfBenefit adjudicates is retired as ADJUDICATED; a FHIR Bundle's DELETE entry or a bulk
   export's deleted file, staged from its raw row and marked by `mark_deleted`, retires the record as
   DELETED). A stale status row retires nothing: it lost to the current version.

Outcomes land in `<table>_outcome` (row_id, outcome, reason, field): 'merged', 'retired' or
'quarantined'; a candidate with no outcome and no failure is staged. Batch order is the order in which
each batch's first current file was ingested (`batch_info`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from rwe_assets.lib.raw_ingest import Status, read_manifest
from rwe_assets.lib.raw_ingest.fhir_json import DELETE_ROW_PREFIX
from rwe_assets.lib.sources import SourceRegistry

# Failures that are the source's own statement about a record, not bad input: the row is a version of
# its record (it takes part in key resolution) and, when it is the latest one, retires the record.
STATUS_REASONS = (
    "ENTERED_IN_ERROR",
    "NOT_DONE",
    "CANCELLED",
    "PLANNED",
    "REFUTED",
    "VOIDED",
    "ADJUDICATED",
    "DELETED",
    "REPLACED",
)
_STATUS_LIST = ", ".join(f"'{reason}'" for reason in STATUS_REASONS)
IS_VERSION = f"(c._reason IS NULL OR c._reason IN ({_STATUS_LIST}))"
IS_STATUS = f"(c._reason IN ({_STATUS_LIST}))"


def create_batch_info(
    con: duckdb.DuckDBPyConnection,
    registry: SourceRegistry,
    current: dict[str, list[dict]],
    staged: dict[str, set[str]] | None = None,
) -> None:
    """Tables batch_info (source_system, _batch_id, batch_order, snapshot, staged) and batch_entity
    (source_system, batch_order, entity: a raw entity the batch has a current file of), from the
    current manifest rows of each staged source (current_manifest_rows). `staged`: per source, the
    batches an earlier run staged (an incremental run, lib/staging/incremental.py)."""
    batches, entities = [], []
    for source in registry:
        if not source.staging_profile:
            continue
        first_ingest: dict[str, object] = {}
        held: dict[str, set[str]] = {}
        for row in current[source.name]:
            batch = row["batch_id"]
            first_ingest[batch] = min(first_ingest.get(batch, row["ingested_at"]), row["ingested_at"])
            held.setdefault(batch, set()).update(e for e in (row["entities"] or "").split(",") if e)
        ordered = sorted(first_ingest, key=lambda b: (first_ingest[b], b))
        for order, batch in enumerate(ordered, start=1):
            done = batch in (staged or {}).get(source.name, ())
            batches.append((source.name, batch, order, source.extract == "snapshot", done))
            entities += [(source.name, order, entity) for entity in sorted(held[batch])]
    con.execute(
        "CREATE OR REPLACE TABLE batch_info "
        "(source_system VARCHAR, _batch_id VARCHAR, batch_order INTEGER, snapshot BOOLEAN, staged BOOLEAN)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE batch_entity (source_system VARCHAR, batch_order INTEGER, entity VARCHAR)"
    )
    _insert(con, "batch_info", batches)
    _insert(con, "batch_entity", entities)


def current_manifest_rows(lake_dir: Path, source: str | None = None) -> list[dict]:
    """Manifest rows of the files whose rows are current (ingested, latest version of their path), of
    one source or of all (one read of the manifest)."""
    latest: dict[tuple[str, str, str], dict] = {}
    for row in read_manifest(lake_dir, source).to_pylist():
        key = (row["source"], row["batch_id"], row["relative_path"])
        if row["status"] == Status.INGESTED and (
            key not in latest or row["file_version"] > latest[key]["file_version"]
        ):
            latest[key] = row
    return list(latest.values())


def mark_deleted(con: duckdb.DuckDBPyConnection, table_name: str, source: str, entity: str) -> None:
    """Give the candidates staged from the raw rows of a DELETE (a FHIR Bundle's DELETE entry, or an
    entry of a bulk export's deleted file: fhir_json.py) the status reason DELETED, whatever else their
    SQL found missing: the row is a version of its record that retires it. Such a row is the request,
    `{"request": ...}` (DELETE_ROW_PREFIX), and has no resourceType, which every resource row has."""
    con.execute(
        f"""
        UPDATE cand_{table_name} c SET _reason = 'DELETED', _reason_field = 'request.method'
        FROM raw_{entity} r
        WHERE starts_with(r.resource_json, $prefix) AND json_extract(r.resource_json, '$.resourceType') IS NULL
          AND c.source_system = $source AND c._source_entity = $entity AND c._batch_id = r._batch_id
          AND c._source_file = r._source_file AND c._line_number = r._line_number
        """,
        {"prefix": DELETE_ROW_PREFIX, "source": source, "entity": entity},
    )


# The latest batch of a scope (alias v) was staged by an earlier run (only in an incremental run).
_LATEST_STAGED = """EXISTS (SELECT 1 FROM batch_info b WHERE b.source_system = v.source_system
                           AND b.batch_order = v.latest AND b.staged)"""


# The source's own version instant of a candidate `c` (FHIR meta.lastUpdated; NULL when not stated).
VERSION_INSTANT = "c._version_at"
# A version is stale when an earlier batch of its key (or record) stated a later instant: an old version
# re-sent. `{o}` orders the batches, `{part}` partitions by key; the frame is the earlier batches only, so
# the rule compares pairs and a version without an instant anywhere in the history changes nothing.
HIGH_WATER = (
    "max({v}) OVER (PARTITION BY {part} ORDER BY {o} RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
)
# Which of two versions of one key is newer: a stale one never wins; among the others the later batch,
# then the later instant. `v` is a row with stale, batch_order and version_instant.
NEWEST_FIRST = "{v}.stale, {v}.batch_order DESC, {v}.version_instant DESC NULLS LAST"


_HIGH_WATER_KEY = HIGH_WATER.format(
    v=VERSION_INSTANT, part="c.source_system, c.record_key", o="b.batch_order"
)
_HIGH_WATER_RECORD = HIGH_WATER.format(v="version_instant", part="source_system, record", o="batch_order")


# Keys are first grouped by this integer hash of their columns, then compared exactly among the few rows
# whose hash is shared (a collision costs a little time, never a wrong outcome).
KEY_HASH = "hash({})"


def _insert(con, table: str, rows: list[tuple]) -> None:
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)


def number_natural_key_collisions(con: duckdb.DuckDBPyConnection, table_name: str, content: str) -> None:
    """Give the 2nd, 3rd, ... distinct row sharing a natural key within one batch its own key."""
    con.execute(
        f"""
        UPDATE cand_{table_name} t SET record_key = t.record_key || '#' || n.ordinal
        FROM (
            WITH keyed AS (  -- integers to group (see resolve_versions), then the exact keys
                SELECT c.rowid AS row_id, {KEY_HASH.format("c.source_system, c._batch_id, c.record_key")} AS key_hash
                FROM cand_{table_name} c WHERE c._natural_key AND {IS_VERSION}
            ),
            maybe AS (
                SELECT c.rowid AS row_id, c.source_system, c._batch_id, c.record_key,
                       md5(CAST(ROW({content}) AS VARCHAR)) AS content_hash, c._source_file, c._line_number
                FROM cand_{table_name} c
                WHERE c.rowid IN (SELECT row_id FROM keyed WHERE key_hash IN (
                    SELECT key_hash FROM keyed GROUP BY ALL HAVING count(*) > 1))
            ),
            shared AS (
                SELECT source_system, _batch_id, record_key FROM maybe GROUP BY ALL HAVING count(*) > 1
            ),
            versions AS (
                SELECT m.* FROM maybe m JOIN shared s
                  ON s.source_system = m.source_system AND s._batch_id = m._batch_id
                 AND s.record_key = m.record_key
            ),
            contents AS (  -- each distinct content once, in the order it first appears in the batch
                SELECT source_system, _batch_id, record_key, content_hash,
                       row_number() OVER (PARTITION BY source_system, _batch_id, record_key
                                          ORDER BY min(_source_file), min(_line_number)) AS ordinal
                FROM versions GROUP BY source_system, _batch_id, record_key, content_hash
            )
            SELECT v.row_id, c.ordinal FROM versions v JOIN contents c USING (source_system, _batch_id, record_key, content_hash)
            WHERE c.ordinal > 1
        ) n
        WHERE t.rowid = n.row_id
        """
    )


def inherit_event_keys(con: duckdb.DuckDBPyConnection) -> None:
    """A cost row with a natural key pays for the event staged from the same raw line (Synthea's
    medication, procedure and vaccination costs): it takes that event's record key, numbered by
    number_natural_key_collisions, as its own key and its event_key, so the collision rule lives here
    once and never in a profile's SQL."""
    con.execute(
        """
        UPDATE cand_cost c SET record_key = e.record_key, event_key = e.record_key
        FROM cand_event e
        WHERE c._natural_key AND e._natural_key AND e.source_system = c.source_system
          AND e._source_entity = c._source_entity AND e._batch_id = c._batch_id
          AND e._source_file = c._source_file AND e._line_number = c._line_number
        """
    )


def create_snapshot_cover(con: duckdb.DuckDBPyConnection, person_tables: list[str]) -> None:
    """Table snapshot_cover (source_system, source_person_id, entity, latest): for each person of a
    snapshot source seen in several batches, the latest batch that holds the person and the entity."""
    held = " UNION ".join(
        f"SELECT DISTINCT source_system, _batch_id, source_person_id FROM cand_{t} WHERE source_person_id IS NOT NULL"
        for t in person_tables
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE snapshot_cover AS
        WITH presence AS (
            SELECT p.source_system, p.source_person_id, b.batch_order
            FROM ({held}) p JOIN batch_info b USING (source_system, _batch_id)
            WHERE b.snapshot
        ),
        several AS (
            SELECT source_system, source_person_id FROM presence GROUP BY ALL HAVING count(*) > 1
        )
        SELECT p.source_system, p.source_person_id, e.entity, max(p.batch_order) AS latest
        FROM presence p JOIN several USING (source_system, source_person_id)
        JOIN batch_entity e ON e.source_system = p.source_system AND e.batch_order = p.batch_order
        GROUP BY ALL
        """
    )
    # a staged batch's retirements are applied already (an incremental run holds only part of its rows)
    con.execute(f"DELETE FROM snapshot_cover v WHERE {_LATEST_STAGED}")


def retire_absent(con: duckdb.DuckDBPyConnection, table_name: str, has_person: bool) -> None:
    """Retire versions a newer batch no longer holds (rule 2 of the module docstring)."""
    ordered = f"""
        SELECT c.rowid AS row_id, c.source_system, c.record_key, c._source_entity, b.batch_order, b.staged,
               {VERSION_INSTANT} AS version_instant, coalesce({VERSION_INSTANT}, '-infinity'::TIMESTAMPTZ) AS version_at,
               {IS_VERSION} AS is_version{", c.source_person_id" if has_person else ""}
        FROM cand_{table_name} c JOIN batch_info b USING (source_system, _batch_id)
        WHERE c.record_key IS NOT NULL
          AND (c.source_system IN (SELECT source_system FROM batch_info GROUP BY ALL HAVING count(*) > 1)
               OR c._version_at IS NOT NULL)  -- two versions of one resource in one batch (a FHIR meta)
    """
    absent_from_latest = """
        AND NOT EXISTS (SELECT 1 FROM ordered n WHERE n.source_system = r.source_system
                        AND n.record_key = r.record_key AND n.batch_order = v.latest)
    """
    if has_person:
        con.execute(
            f"""
            INSERT INTO {table_name}_outcome
            WITH ordered AS ({ordered})
            SELECT r.row_id, 'retired', 'ABSENT_FROM_SNAPSHOT', 'source_person_id'
            FROM ordered r JOIN snapshot_cover v
              ON v.source_system = r.source_system AND v.source_person_id = r.source_person_id
             AND v.entity = r._source_entity
            WHERE r.is_version AND r.batch_order < v.latest {absent_from_latest}
            """
        )
    # A version is (batch, the source's own version instant); the newest of a record is the first by
    # NEWEST_FIRST. Rows of older versions it no longer holds retire, also within one batch. In an
    # incremental run a staged newest version's retirements of staged rows are applied already; a new
    # batch's row that is older than it (an old version re-sent) is compared here as in a full build.
    con.execute(
        f"""
        INSERT INTO {table_name}_outcome
        WITH ordered AS (SELECT *, split_part(record_key, '#', 1) AS record FROM ({ordered})),
        resent AS (  -- source records sent as more than one version: only these can have lost a row
            SELECT source_system, record FROM ordered GROUP BY ALL
            HAVING min(batch_order) < max(batch_order) OR min(version_at) < max(version_at)
        ),
        versions AS (
            SELECT DISTINCT o.source_system, o.record, o.batch_order, o.version_at, o.version_instant
            FROM ordered o JOIN resent r USING (source_system, record)
        ),
        newest AS (
            SELECT v.source_system, v.record, v.batch_order AS latest, v.version_at AS latest_at
            FROM (SELECT *, coalesce(version_instant < {_HIGH_WATER_RECORD}, false) AS stale FROM versions) v
            QUALIFY row_number() OVER (PARTITION BY v.source_system, v.record
                                       ORDER BY {NEWEST_FIRST.format(v="v")}) = 1
        )
        SELECT r.row_id, 'retired', 'ABSENT_FROM_NEWER_VERSION', 'record_key'
        FROM ordered r JOIN newest v USING (source_system, record)
        WHERE r.is_version AND (r.batch_order <> v.latest OR r.version_at <> v.latest_at)
          AND NOT (r.staged AND {_LATEST_STAGED})
          AND r.row_id NOT IN (SELECT row_id FROM {table_name}_outcome)
          AND NOT EXISTS (SELECT 1 FROM ordered n WHERE n.source_system = r.source_system
                          AND n.record_key = r.record_key AND n.batch_order = v.latest
                          AND n.version_at = v.latest_at)
        """
    )


def resolve_versions(con: duckdb.DuckDBPyConnection, table_name: str, content: str) -> None:
    """Keep the latest version of each key (rule 3 of the module docstring)."""
    # Only keys held by several versions can have a loser. They are found in two steps: the hashes of
    # (source_system, record_key) held more than once (one integer aggregate over a lean projection: a
    # CTE of every column would be materialized whole, a copy of the table), then the exact keys among
    # the few rows of those hashes; only their rows are ranked (a sort) and their content hashed.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ranked_versions AS
        WITH open_versions AS (
            SELECT c.rowid AS row_id, {KEY_HASH.format("c.source_system, c.record_key")} AS key_hash
            FROM cand_{table_name} c JOIN batch_info b USING (source_system, _batch_id)
            WHERE {IS_VERSION} AND c.rowid NOT IN (SELECT row_id FROM {table_name}_outcome)
        ),
        shared AS (
            SELECT c.*, c.rowid AS row_id, b.batch_order, {VERSION_INSTANT} AS version_instant,
                   coalesce({VERSION_INSTANT} < {_HIGH_WATER_KEY}, false) AS stale,
                   max({VERSION_INSTANT}) OVER (PARTITION BY c.source_system, c.record_key) AS key_high_water
            FROM cand_{table_name} c JOIN batch_info b USING (source_system, _batch_id)
            WHERE c.rowid IN (SELECT row_id FROM open_versions WHERE key_hash IN (
                SELECT key_hash FROM open_versions GROUP BY ALL HAVING count(*) > 1))
        ),
        duplicate_keys AS (
            SELECT source_system, record_key FROM shared GROUP BY ALL HAVING count(*) > 1
        ),
        ranked AS (
            SELECT c.row_id, c._batch_id,
                   md5(CAST(ROW({content}, c._reason) AS VARCHAR)) AS content_hash,
                   row_number() OVER w AS rank,
                   first_value(md5(CAST(ROW({content}, c._reason) AS VARCHAR))) OVER w AS keeper_hash,
                   first_value(c._batch_id) OVER w AS keeper_batch,
                   c.stale, c.version_instant < first_value(c.version_instant) OVER w AS older_version,
                   c.version_instant, c.key_high_water
            FROM shared c
            JOIN duplicate_keys d
              ON d.source_system IS NOT DISTINCT FROM c.source_system
             AND d.record_key IS NOT DISTINCT FROM c.record_key
            WINDOW w AS (PARTITION BY c.source_system, c.record_key
                         ORDER BY {NEWEST_FIRST.format(v="c")},
                                  c._ingested_at DESC, c._source_file, c._line_number)
        )
        SELECT * FROM ranked
        """
    )
    con.execute(
        f"""
        INSERT INTO {table_name}_outcome
        SELECT row_id,
               CASE WHEN content_hash = keeper_hash OR _batch_id <> keeper_batch OR older_version OR stale
                    THEN 'merged' ELSE 'quarantined' END,
               CASE WHEN content_hash = keeper_hash THEN 'DUPLICATE_IDENTICAL'
                    WHEN stale THEN 'STALE_VERSION'
                    WHEN _batch_id <> keeper_batch OR older_version THEN 'SUPERSEDED' ELSE 'DUPLICATE_ID' END,
               'record_key'
        FROM ranked_versions
        WHERE rank > 1
        """
    )
    # The winner keeps its key's latest instant (its own, or an earlier batch's when it states none):
    # an incremental run compares a re-sent version with that alone, as a full build with every batch.
    con.execute(
        f"""
        UPDATE cand_{table_name} c SET _version_at = r.key_high_water FROM ranked_versions r
        WHERE c.rowid = r.row_id AND r.rank = 1 AND coalesce(r.version_instant < r.key_high_water, true)
          AND r.key_high_water IS NOT NULL
        """
    )
    con.execute("DROP TABLE ranked_versions")
    # A status row left without an outcome is the current version of its record: it retires it.
    con.execute(
        f"""
        INSERT INTO {table_name}_outcome
        SELECT c.rowid, 'retired', c._reason, c._reason_field FROM cand_{table_name} c
        WHERE {IS_STATUS} AND c.rowid NOT IN (SELECT row_id FROM {table_name}_outcome)
        """
    )
