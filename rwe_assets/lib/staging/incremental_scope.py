"""Incremental staging, the scope and the changes (issue 26): the prior rows an incremental run stages
again with the new batches' rows, and the SQL of what it then writes (docs/operations.md,
"Incremental refresh").

Scope. Per source with new batches, the candidates are the new batches' rows (the profile SQL over
their files only) plus the *prior rows* in scope: the staged rows, and the rows quarantined only for a
missing person, visit or event (kept whole in `_pending_<table>`: a later batch may bring the parent),
that are
- of a record (record_key before '#') a new row belongs to: its versions and its other rows;
- of a person a new row names (a snapshot batch retires what it leaves out, per person and entity;
  a new or corrected person can orphan or adopt rows);
- children of a visit or event in scope (a withdrawn visit orphans its events).
The record lifecycle then runs unchanged over them, except that only a new batch can be the one that
retires what it leaves out (lifecycle.retire_absent): the staged batches' retirements are in the prior
state already. What a full build of all batches would stage for these records, this stages; rows out
of scope keep their staged state, which nothing in the new batches can change. A staged row holds
its key's latest version instant, all a new version is compared with (lifecycle.HIGH_WATER); a record
withdrawn (a status row current: DELETED, ...) has no staged row, so a new dated version of it makes
the run a full build (refuse_resent_withdrawn). So does a FHIR link across batches that the profile
SQL decides from the raw rows of the staged files alone (refuse_cross_batch_links). Person values the
profile SQL aggregates over rows of several batches (DE-SynPUF year files) are computed over the new
rows and the earlier rows of their persons, for the new and the staged rows alike
(aggregate_persons_across_batches, aggregate_scope_rows); only a person those values quarantine makes
the run full (refuse_person_aggregates_across_batches).
"""

from __future__ import annotations

import duckdb

from rwe_assets.lib import lake
from rwe_assets.lib.sql_loader import Fragment, fill_text
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging.incremental_state import (
    PENDING_PREFIX,
    FullBuildNeeded,
    pending_tables,
    staging_path,
)
from rwe_assets.lib.staging.lifecycle import STATUS_REASONS
from rwe_assets.lib.staging.model import BY_NAME, TABLES

PARENT_COLUMNS = {"visit_key": "visit", "event_key": "event"}
_STATUS = ", ".join(quote_literal(reason) for reason in STATUS_REASONS)


def register_prior(con: duckdb.DuckDBPyConnection, lake_dir) -> None:
    """Views prior_<table>: the staged rows plus the pending ones (flag _pending), as last written."""
    for table in TABLES:
        columns = ", ".join(f'"{n}"' for n in table.column_names)
        lake.register_parquet_view(con, f"staged_prior_{table.name}", staging_path(lake_dir, table.name))
        parts = [f"SELECT {columns}, false AS _pending FROM staged_prior_{table.name}"]
        if table.name in pending_tables():
            lake.register_parquet_view(
                con, f"pending_prior_{table.name}", staging_path(lake_dir, PENDING_PREFIX + table.name)
            )
            parts.append(f"SELECT {columns}, true AS _pending FROM pending_prior_{table.name}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW prior_{table.name} AS {' UNION ALL '.join(parts)}")
    lake.register_parquet_view(con, "quarantine_prior", staging_path(lake_dir, "_quarantine"))
    lake.register_parquet_view(con, "retired_prior", staging_path(lake_dir, "_retired"))


def select_scope(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Tables scope_<table>: the prior rows of `source` in scope (module docstring), from the new
    candidates in cand_<table> (their natural keys already numbered)."""
    persons = [t.name for t in TABLES if "source_person_id" in t.column_names]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE touched_records AS "
        + " UNION ".join(
            f"SELECT DISTINCT '{t.name}' AS tbl, split_part(record_key, '#', 1) AS record FROM cand_{t.name} "
            "WHERE record_key IS NOT NULL"
            for t in TABLES
        )
    )
    same_record = "split_part(o.record_key, '#', 1) IN (SELECT record FROM touched_records WHERE tbl = '{t}')"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE touched_persons AS "
        + " UNION ".join(
            f"SELECT source_person_id FROM cand_{t} WHERE source_person_id IS NOT NULL UNION "
            f"SELECT o.source_person_id FROM prior_{t} o WHERE o.source_system = $source "
            f"AND {same_record.format(t=t)}"
            for t in persons
        ),
        {"source": source},
    )
    for table in TABLES:
        conditions = [same_record.format(t=table.name)]
        if table.name in persons:
            conditions.append("o.source_person_id IN (SELECT source_person_id FROM touched_persons)")
        for column, parent in PARENT_COLUMNS.items():
            if column in table.column_names:
                conditions.append(
                    f"o.{column} IN (SELECT record_key FROM scope_{parent} "
                    f"UNION ALL SELECT record_key FROM cand_{parent})"
                )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE scope_{table.name} AS SELECT * FROM prior_{table.name} o "
            f"WHERE o.source_system = $source AND ({' OR '.join(conditions)})",
            {"source": source},
        )
    refuse_resent_withdrawn(con, source)


def refuse_resent_withdrawn(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Raise FullBuildNeeded when a new row stating its version instant belongs to a record an earlier
    batch withdrew (its current version was a status row: DELETED, ENTERED_IN_ERROR, ...), nothing of
    it staged: whether the row is stale depends on the instants of that history, which no staged row
    keeps (lifecycle.HIGH_WATER), so a full build decides, as it would alone."""
    withdrawn = " UNION ALL ".join(
        f"""SELECT 1 FROM cand_{t.name} c WHERE c._version_at IS NOT NULL
            AND split_part(c.record_key, '#', 1) IN (
                SELECT split_part(record_key, '#', 1) FROM retired_prior
                WHERE staging_table = '{t.name}' AND source_system = $source AND reason_code IN ({_STATUS}))
            AND split_part(c.record_key, '#', 1) NOT IN (
                SELECT split_part(record_key, '#', 1) FROM scope_{t.name} WHERE NOT _pending)"""
        for t in TABLES
        if "_version_at" in t.column_names
    )
    if withdrawn and con.execute(f"SELECT EXISTS ({withdrawn})", {"source": source}).fetchone()[0]:
        raise FullBuildNeeded(
            "a new batch re-sends, with its version instant, a record an earlier batch withdrew"
        )


# (entity that names, entity named): an ExplanationOfBenefit retires the Claim it adjudicates and
# lends it its links; a note retires the note it replaces
CROSS_LINKS = (
    ("explanationofbenefit", "claim"),
    ("documentreference", "documentreference"),
    ("procedure", "device"),  # a Procedure's focalDevice dates the Device (rwe_fhir_device_uses)
    # a request's or an administration's medicationReference names its drug's code (rwe_fhir_medications)
    ("medicationrequest", "medication"),
    ("medicationadministration", "medication"),
)
_MEDICATION_LINK = (
    "SELECT rwe_text(resource_id) AS own, rwe_fhir_medication_id_json(resource_json) AS id "
    "FROM {rows} WHERE resource_json LIKE '%medicationReference%'"
)
# the (own id, linked id) of each row of {rows} that links, by the profile SQL's own macros
# (lib/sql/staging/fhir_r4/_macros.sql)
_LINKS = {
    "explanationofbenefit": "SELECT rwe_text(resource_id) AS own, rwe_fhir_adjudicated_claim_json(resource_json) AS id "
    "FROM {rows}",
    "documentreference": "SELECT rwe_text(resource_id) AS own, unnest(rwe_fhir_replaced_notes(resource_json)) AS id "
    "FROM {rows} WHERE resource_json LIKE '%replaces%'",  # a substring test first: few notes replace one
    "procedure": "SELECT rwe_text(resource_id) AS own, unnest(rwe_fhir_manipulated_devices(resource_json)) AS id "
    "FROM {rows} WHERE resource_json LIKE '%focalDevice%'",  # a substring test first: few Procedures name one
    "medicationrequest": _MEDICATION_LINK,
    "medicationadministration": _MEDICATION_LINK,
}


def _earlier_shas(current_shas, new_shas) -> list[str]:
    """The source's current files that are not the new batches' (sorted, for a stable query)."""
    return sorted(set(current_shas) - set(new_shas))


def _earlier_rows(entity: str) -> str:
    """A query of the rows of the earlier current files ($prior_shas) of raw_<entity>_all, the view of
    every landed row of the entity."""
    return f"SELECT * FROM raw_{entity}_all WHERE _file_sha256 IN (SELECT unnest($prior_shas))"


def refuse_cross_batch_links(
    con: duckdb.DuckDBPyConnection, lake_dir, source, new_shas: list[str], current_shas
) -> None:
    """Raise FullBuildNeeded when a link the profile SQL resolves within the raw rows it reads joins
    a new batch with an earlier one: the SQL of the new batches alone would miss it (a Claim staged
    beside its EOB, a replaced note staged, a withdrawn replacement's note left retired). Reads the
    raw views of build._stage_source; the earlier batches' rows are the source's other current files."""
    if source.format != "ndjson":
        return
    prior_shas = _earlier_shas(current_shas, new_shas)
    for naming, named in CROSS_LINKS:
        if naming not in source.entity_names or named not in source.entity_names or not prior_shas:
            continue
        landed = [lake.exists(lake.table_path(lake_dir, "raw", source.name, e)) for e in (naming, named)]
        if all(landed) and _links_across(con, naming, named, prior_shas):
            raise FullBuildNeeded(f"a {naming} links a {named} across a new batch and an earlier one")


def _links_across(con, naming: str, named: str, prior_shas: list[str]) -> bool:
    """A new row links an earlier one, an earlier row links a new one, or a new version of an earlier
    linking row is sent (it may link no more). raw_<entity>_all: every landed row of the entity."""

    def prior(entity: str) -> Fragment:
        return Fragment(f"({_earlier_rows(entity)})")

    def links(rows: str) -> str:
        return fill_text(_LINKS[naming], {"rows": Fragment(rows)}, f"incremental_scope links of {naming}")

    checks = [
        f"SELECT 1 FROM ({links(f'raw_{naming}')}) WHERE id IN (SELECT rwe_text(resource_id) FROM {prior(named)})",
        f"SELECT 1 FROM ({links(prior(naming))}) WHERE id IS NOT NULL AND (id IN (SELECT rwe_text(resource_id) "
        f"FROM raw_{named}) OR own IN (SELECT rwe_text(resource_id) FROM raw_{naming}))",
    ]
    query = "SELECT " + " OR ".join(f"EXISTS ({c})" for c in checks)
    return con.execute(query, {"prior_shas": prior_shas}).fetchone()[0]


# staging profile: (table, raw entity, person column) whose SQL gives each row values aggregated over
# every raw row of its person (DE-SynPUF: a person's year files: the death any year states, the most
# complete birth date, the last year)
PERSON_AGGREGATES = {"synpuf": ("person_source", "beneficiary_summary", "DESYNPUF_ID")}
_AGGREGATED_COLUMNS = (
    "birth_date", "birth_year", "birth_month", "birth_date_flag", "record_updated", "death_date",
    "gender_source_value", "race_source_value",
)  # fmt: skip


def aggregate_persons_across_batches(
    con: duckdb.DuckDBPyConnection, lake_dir, source, sql: str, select: str, new_shas: list[str], current_shas
) -> bool:
    """The new batches' rows of PERSON_AGGREGATES' entity staged with the values a full build gives them:
    table inc_aggregated, the profile SQL (`sql`, its candidate columns `select`) over the new rows
    and the earlier current rows of their persons, replaces the entity's new candidates. Right after
    build._stage_source; returns whether any earlier row took part (else nothing changed)."""
    table, entity, person = PERSON_AGGREGATES[source.staging_profile]
    raw, prior_shas = f"raw_{entity}", _earlier_shas(current_shas, new_shas)
    con.execute("DROP TABLE IF EXISTS inc_aggregated")
    if not prior_shas or not lake.exists(lake.table_path(lake_dir, "raw", source.name, entity)):
        return False
    con.execute(
        "CREATE OR REPLACE TEMP TABLE inc_aggregated_persons AS "
        f"SELECT DISTINCT rwe_text({person}) AS id FROM {raw} WHERE rwe_text({person}) IS NOT NULL"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE inc_earlier_{entity} AS {_earlier_rows(entity)} "
        f"AND rwe_text({person}) IN (SELECT id FROM inc_aggregated_persons)",
        {"prior_shas": prior_shas},
    )
    if not con.execute(f"SELECT count(*) FROM inc_earlier_{entity}").fetchone()[0]:
        return False  # new persons only (a new sample): nothing to aggregate with
    con.execute(f"ALTER VIEW {raw} RENAME TO inc_new_{entity}")
    try:  # the profile SQL over the persons' rows of every current batch
        con.execute(
            f"CREATE VIEW {raw} AS SELECT * FROM inc_new_{entity} UNION ALL BY NAME SELECT * FROM inc_earlier_{entity}"
        )
        con.execute(f"CREATE TEMP TABLE inc_aggregated AS {sql}", {"source": source.name})
    finally:
        con.execute(f"DROP VIEW IF EXISTS {raw}")
        con.execute(f"ALTER VIEW inc_new_{entity} RENAME TO {raw}")
    new_rows = f"(_source_file, _line_number) IN (SELECT _source_file, _line_number FROM {raw})"
    con.execute(
        f"DELETE FROM cand_{table} WHERE source_system = $source AND _source_entity = '{entity}'",
        {"source": source.name},
    )
    con.execute(
        f"INSERT INTO cand_{table} SELECT {select} FROM inc_aggregated WHERE {new_rows} "
        "ORDER BY _source_file, _line_number"
    )
    return True


def aggregate_scope_rows(con: duckdb.DuckDBPyConnection, source) -> None:
    """The staged rows in scope of the persons in inc_aggregated (after add_scope_to_candidates) take
    the values aggregated over all their rows, as every row of theirs does in a full build: a late or
    a new year file's row is then the same fact as the staged one (DUPLICATE_IDENTICAL), and a value
    only the new rows state (a death) reaches the staged row whichever year wins."""
    if not _has_table(con, "inc_aggregated"):
        return
    table = PERSON_AGGREGATES[source.staging_profile][0]
    columns = ", ".join(f'"{c}"' for c in _AGGREGATED_COLUMNS)
    assigned = ", ".join(f'"{c}" = a."{c}"' for c in _AGGREGATED_COLUMNS)
    con.execute(
        f"""
        UPDATE cand_{table} c SET {assigned}
        FROM (SELECT DISTINCT ON (record_key) record_key, {columns} FROM inc_aggregated
              WHERE record_key IS NOT NULL) a
        WHERE c.source_system = $source AND c.record_key = a.record_key
        """,
        {"source": source.name},
    )


def refuse_person_aggregates_across_batches(con: duckdb.DuckDBPyConnection, source) -> None:
    """Raise FullBuildNeeded when a person of inc_aggregated (aggregate_persons_across_batches) is
    staged otherwise than the profile SQL over all their current rows stages them: a row a full build
    quarantines for the aggregated values (a death before the birth another year states) while the
    staged row passed. After build.resolve_tables (reads staged_<table>)."""
    if not _has_table(con, "inc_aggregated"):
        return
    table, entity, _ = PERSON_AGGREGATES[source.staging_profile]
    columns = ", ".join(f'"{c}"' for c in ("record_key", *_AGGREGATED_COLUMNS))
    full = f"SELECT DISTINCT {columns} FROM inc_aggregated WHERE _failure IS NULL"
    staged = (
        f"SELECT DISTINCT {columns} FROM staged_{table} WHERE source_system = $source "
        "AND record_key IN (SELECT id FROM inc_aggregated_persons)"
    )
    query = f"SELECT EXISTS (({full} EXCEPT {staged}) UNION ALL ({staged} EXCEPT {full}))"
    if con.execute(query, {"source": source.name}).fetchone()[0]:
        raise FullBuildNeeded(
            f"a new {entity} row changes what an earlier batch's rows of its person state ({table}): "
            "a full build stages values aggregated over all of them"
        )


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0]
    )


def add_scope_to_candidates(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """The prior rows in scope become candidates again: valid, their keys final (not natural), their
    `_version_at` as staged (a new version is compared with the staged one's instant, as in a full build)."""
    for name in tables:
        columns = ", ".join(f'"{n}"' for n in BY_NAME[name].column_names)
        con.execute(f"INSERT INTO cand_{name} SELECT {columns}, NULL, NULL, false FROM scope_{name}")


def create_reference_view(con: duckdb.DuckDBPyConnection, table: str, source: str) -> None:
    """View ref_<table>: what a reference check finds staged, the candidates staged now plus the prior
    staged rows of `source` out of scope (which this run leaves as they are)."""
    columns = "source_system, record_key, source_person_id"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW ref_{table} AS
        SELECT {columns} FROM staged_{table}
        UNION ALL
        SELECT {columns} FROM staged_prior_{table} o
        WHERE o.source_system = {quote_literal(source)}
          AND o.record_key NOT IN (SELECT record_key FROM scope_{table} WHERE NOT _pending)
        """
    )


# ---- changes: what this run writes ---------------------------------------------------------------


def change_queries(table: str) -> dict[str, str]:
    """The SQL of one source's changes to `table` (after the lifecycle ran over its candidates):
    'upsert' the staged rows that are new or differ from their prior version, 'delete' the prior
    staged keys no longer staged (with their person, for the touched set)."""
    columns = ", ".join(f'"{n}"' for n in BY_NAME[table].column_names)
    person = "source_person_id" if "source_person_id" in BY_NAME[table].column_names else "NULL"
    return {
        "upsert": f"SELECT {columns} FROM staged_{table} EXCEPT ALL SELECT {columns} FROM scope_{table} WHERE NOT _pending",
        "delete": f"SELECT source_system, record_key, {person} AS source_person_id, _source_file, _line_number "
        f"FROM scope_{table} s "
        f"WHERE NOT _pending AND (source_system, record_key) NOT IN (SELECT source_system, record_key FROM staged_{table})",
    }


def pending_changes(table: str, pending_sql: str) -> dict[str, str]:
    """The changes to _pending_<table>: rows newly waiting for a parent, and prior pending rows in
    scope that no longer wait (or wait for another reason: they are inserted again)."""
    columns = ", ".join(f'"{n}"' for n in BY_NAME[table].column_names)
    return {
        "upsert": f"SELECT {columns} FROM ({pending_sql}) EXCEPT ALL SELECT {columns} FROM scope_{table} WHERE _pending",
        "delete": f"SELECT {columns} FROM scope_{table} WHERE _pending EXCEPT ALL SELECT {columns} FROM ({pending_sql})",
    }


def released_quarantine_sql() -> str:
    """Quarantine rows of the prior pending rows in scope: they were re-checked, so the run's own
    outcome for them replaces these (deleted unless the same row is quarantined again)."""
    return " UNION ALL ".join(
        f"SELECT '{t}' AS staging_table, source_system, record_key, _source_entity, _source_file, _line_number "
        f"FROM scope_{t} WHERE _pending"
        for t in pending_tables()
    )
