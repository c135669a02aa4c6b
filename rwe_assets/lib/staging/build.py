"""Build the staging layer: raw rows -> canonical typed tables, with quarantine and reconciliation.

For each source, the SQL files of its staging profile (`lib/sql/staging/<profile>/<table>/<raw
entity>.sql`) turn one raw entity into candidate rows of one canonical table. Each candidate carries
the first validation rule it fails (`_failure`: reason code and field) or none. Then, over all sources:

1. rows that fail a rule go to quarantine with their reason, and every row of a person an erasure's
   tombstone names goes there as 'ERASED_PERSON', its record key cleared (lib/governance/tombstone.py);
2. each record's current version is chosen and older or withdrawn ones retired (lib/staging/lifecycle.py):
   versions of one key resolve to the latest ('DUPLICATE_IDENTICAL', 'SUPERSEDED' and 'STALE_VERSION'
   merge, a differing row of the same batch is quarantined as 'DUPLICATE_ID'); a row a newer snapshot or a
   newer version of its source record no longer holds is retired, and so is a record whose latest
   version has a status reason (lifecycle.STATUS_REASONS: entered in error, not done, cancelled,
   planned, refuted, void, adjudicated);
3. references are checked in order person -> visit -> event: a row whose person (or visit) was not
   staged is quarantined ('ORPHAN_PERSON', 'MISSING_VISIT').

Counts reconcile per source, raw entity and table: raw rows + fan-out = staged + quarantined + merged
+ retired, where fan-out counts the extra rows of a raw row that stages as several (a FHIR Observation
with n components gives n rows: fan-out n - 1). Macros: `lib/sql/staging/_macros.sql` (every profile)
is created first, then the profile's own `<profile>/_macros.sql` (lib/staging/sql_templates.py).
Raw rows are read only from files the ingest manifest lists as ingested, latest version of each.

Memory: every rule above compares rows of one source system only, so sources are built one at a time.
A source's results go to Parquet pieces in a scratch dir (lake/_work/staging unless the caller names
another: it holds PII, so owner-only, removed at the end), its candidates dropped before the next source;
DuckDB spills to scratch/spill. The pieces and the last source's candidates become each table in one commit.

Incremental runs: when only new batches landed since the last run, lib/staging/incremental.py stages
those batches and the earlier rows they touch through the same steps and merges the difference into
each table; every other case is the full build above (the rule: docs/operations.md, "Incremental
refresh"). The counts then come from the tables as written (lib/staging/accounting.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import CALL_ENTITY as GENOMICS_CALL_ENTITY
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.sources import SourceRegistry, SourceSpec, set_identifier_variables
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging import accounting, deid, layout, profile_inputs
from rwe_assets.lib.staging import incremental as inc
from rwe_assets.lib.staging import incremental_state as inc_state
from rwe_assets.lib.staging.accounting import StagingReport
from rwe_assets.lib.staging.lifecycle import (
    IS_STATUS,
    create_batch_info,
    create_snapshot_cover,
    current_manifest_rows,
    inherit_event_keys,
    mark_deleted,
    number_natural_key_collisions,
    resolve_versions,
    retire_absent,
)
from rwe_assets.lib.staging.model import BY_NAME, TABLES
from rwe_assets.lib.staging.sql_templates import profile_macros, profile_sql_text

SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "staging"
QUARANTINE = "_quarantine"
MERGED = "_merged"
RETIRED = "_retired"
NOT_MODELLED = "_not_modelled"  # raw rows of the entities (resource types) no profile SQL stages
_PLAN: contextvars.ContextVar[inc_state.Plan] = contextvars.ContextVar("staging_plan")  # the run's writes tag
# The order references are checked in: a table's rows need the rows of the tables before it.
REFERENCES = {
    "person_pii": (("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),),
    "visit": (("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),),
    "event": (
        ("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),
        ("visit_key", "visit", "record_key", "MISSING_VISIT"),
    ),
    "note": (
        ("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),
        ("visit_key", "visit", "record_key", "MISSING_VISIT"),
    ),
    "enrollment": (("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),),
    "cost": (
        ("source_person_id", "person_source", "source_person_id", "ORPHAN_PERSON"),
        ("visit_key", "visit", "record_key", "MISSING_VISIT"),
        ("event_key", "event", "record_key", "MISSING_EVENT"),
    ),
}
# A profile's `_optional_columns.csv` (entity,column) lists raw columns some layouts of its format
# lack (DE-SynPUF's monthly enrollment columns, say): a raw view without one gets it as '' (what an
# empty CSV field reads as), so one SQL file serves every layout.

# Questions whose free-text answer is an identifier: the answer is not staged (the question is, with
# no value), so it cannot reach the CDM. Synthea's PRAPARE survey asks for the street address.
IDENTIFYING_ANSWERS = {("LOINC", "56799-0"): "street address (What address do you live at?)"}

# Note text is de-identified by lib/staging/deid.py: the patient's own values in every written form
# (names, birth date, street line, city, ZIP, phone, SSN, MRN, licence, passport) become deid.REDACTED,
# and pattern recognizers for the Safe Harbor kinds (dates except year, phone, e-mail, URL, IP, ids,
# ages over 89, addresses, facility names) catch what the structured data does not hold; other
# people's names (contacts, after a title or role, before a credential, Synthea-shaped) become
# deid.NAME word by word. One matcher per person, compiled once for all their notes.

# Datetimes are the source's local wall-clock time: a UTC offset is dropped, not applied, so an evening
# encounter at 23:58-04:00 stays on its calendar day (OMOP dates are the local dates care happened on).
# A 'Z' (UTC) time is kept as written: the source said nothing of the local zone. An end whose wall
# clock runs behind its start although it comes later (a visit across the autumn DST change, 01:30-04:00
# to 01:10-05:00) is the start's local time plus the real duration (rwe_ts_end), so periods keep their
# order and length.
MACROS = r"""
CREATE OR REPLACE MACRO rwe_text(x) AS nullif(trim(x), '');
CREATE OR REPLACE MACRO rwe_ts(x) AS CASE WHEN rwe_text(x) IS NULL THEN NULL
    ELSE coalesce(TRY_CAST(rwe_text(x) AS TIMESTAMP), try_strptime(rwe_text(x), '%Y%m%d')) END;
CREATE OR REPLACE MACRO rwe_bad_ts(x) AS rwe_text(x) IS NOT NULL AND rwe_ts(x) IS NULL;
CREATE OR REPLACE MACRO rwe_instant(x) AS TRY_CAST(rwe_text(x) AS TIMESTAMPTZ);
CREATE OR REPLACE MACRO rwe_ts_end(start_text, end_text) AS CASE
    WHEN rwe_ts(end_text) < rwe_ts(start_text) AND rwe_instant(end_text) >= rwe_instant(start_text)
    THEN rwe_ts(start_text) + (rwe_instant(end_text) - rwe_instant(start_text))
    ELSE rwe_ts(end_text) END;
CREATE OR REPLACE MACRO rwe_date(x) AS rwe_ts(x)::DATE;
CREATE OR REPLACE MACRO rwe_bad_date(x) AS rwe_bad_ts(x);
-- Birth dates (docs/data-formats.md, "Persons"): a text shaped YYYY, YYYY-MM or YYYY-MM-DD (dashes
-- optional) that is no valid date still gives its year (and a month 1-12): OMOP needs only the year.
CREATE OR REPLACE MACRO rwe_date_part(x, n) AS TRY_CAST(nullif(regexp_extract(rwe_text(x),
    '^([0-9]{4})(-?([0-9]{2}))?(-?([0-9]{2}))?([T ].*)?$', n), '') AS INTEGER);
CREATE OR REPLACE MACRO rwe_birth_year(x) AS coalesce(year(rwe_date(x)), rwe_date_part(x, 1));
CREATE OR REPLACE MACRO rwe_birth_month(x) AS coalesce(month(rwe_date(x)),
    CASE WHEN rwe_date_part(x, 3) BETWEEN 1 AND 12 THEN rwe_date_part(x, 3) END);
CREATE OR REPLACE MACRO rwe_birth_flag(x) AS CASE WHEN rwe_text(x) IS NULL THEN 'MISSING_BIRTH_DATE'
    WHEN rwe_date(x) IS NOT NULL THEN NULL
    WHEN regexp_full_match(rwe_text(x), '[0-9]{4}(-(0[1-9]|1[0-2]))?') THEN 'PARTIAL_BIRTH_DATE'
    ELSE 'INVALID_BIRTH_DATE' END;
CREATE OR REPLACE MACRO rwe_num(x) AS TRY_CAST(rwe_text(x) AS DOUBLE);
CREATE OR REPLACE MACRO rwe_bad_num(x) AS rwe_text(x) IS NOT NULL AND rwe_num(x) IS NULL;
CREATE OR REPLACE MACRO rwe_first_failure(checks) AS list_filter(checks, c -> coalesce(c.failed, false))[1];
-- Identifiers a source declares (sources.yaml `identifiers`, set as variable rwe_identifier_fields by
-- lib/sources.py): the declared fields, and their {type, system, value} read from a row's JSON by name
-- (a declared column the file lacks gives no identifier); raw values, linkage normalizes.
CREATE OR REPLACE MACRO rwe_identifier_fields() AS from_json(coalesce(getvariable('rwe_identifier_fields'), '[]'),
    '[{"type": "VARCHAR", "system": "VARCHAR", "path": "VARCHAR", "system_path": "VARCHAR", "match_system": "VARCHAR"}]');
CREATE OR REPLACE MACRO rwe_declared_identifiers(row_json) AS list_filter(list_transform(rwe_identifier_fields(),
    f -> {'type': f.type, 'system': coalesce(f.system, rwe_text(json_extract_string(row_json, f.system_path))),
          'value': rwe_text(json_extract_string(row_json, f.path))}), i -> i.value IS NOT NULL);
"""


def staging_connection(memory_limit: str = "4GB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(MACROS)
    con.create_function("rwe_html_unescape", _html_unescape, ["VARCHAR"], "VARCHAR", type="arrow")
    return con


def _html_unescape(texts):
    """HTML character references decoded by the full HTML5 table (named, decimal, hex): SQL has no such
    table, and a name written 'M&uuml;ller' must reach the de-identification as 'Müller'."""
    return pa.array([None if t is None else html.unescape(t) for t in texts.to_pylist()], pa.string())


def build_staging(
    lake_dir: Path,
    registry: SourceRegistry,
    con: duckdb.DuckDBPyConnection | None = None,
    scratch_dir: Path | None = None,
    incremental: bool = True,
) -> StagingReport:
    """Stage the raw layer into lake/staging/, one source at a time (module docstring, "Memory"):
    only the new batches and what they touch when nothing else changed since the last run, else every
    table rebuilt (lib/staging/incremental.py; `incremental=False` forces that)."""
    con = con or staging_connection()
    staged = [s for s in registry if s.staging_profile]
    # the manifest rows of each source's current files: they pick the raw rows to stage and give the
    # batch order the record lifecycle resolves versions by
    current = {s.name: [] for s in staged}
    for row in current_manifest_rows(lake_dir):
        current.get(row["source"], []).append(row)
    plan = inc_state.plan_staging(lake_dir, registry, current, incremental)
    scratch = _fresh_scratch(scratch_dir or lake.work_dir(lake_dir, "staging"))
    token = _PLAN.set(plan)
    try:
        _use_spill_dir(con, scratch / "spill")
        accounting.create_totals(con)
        if plan.mode != "full":
            try:
                return inc.build_changes(con, lake_dir, registry, plan, scratch)
            except inc.FullBuildNeeded as need:  # nothing written yet: stage everything instead
                plan = replace(plan, mode="full", reason=str(need))
                _PLAN.set(plan)
                _drop_candidate_tables(con)
                inc.clear_pieces(scratch)
                accounting.create_totals(con)
        for n, source in enumerate(staged):  # the last source's rows go to Delta as they are
            _build_source(con, lake_dir, source, current[source.name], scratch, n, source is not staged[-1])
        if not staged:  # every table is written all the same, empty, with its columns
            _create_candidate_tables(con)
            for table in TABLES:
                _refresh_staged(con, table.name)
        _write_outputs(con, lake_dir, scratch)
        _drop_candidate_tables(con)
        inc_state.write_state(con, lake_dir, plan, empty_touched=True)
        return accounting.report(con, lake_dir, plan.mode, plan.reason)
    finally:
        _PLAN.reset(token)
        shutil.rmtree(scratch, ignore_errors=True)


def _build_source(
    con, lake_dir: Path, source: SourceSpec, current: list[dict], scratch: Path, number: int, pieces: bool
) -> None:
    """Stage one source: candidates, refusals, redaction, lifecycle, references; its outputs go to
    Parquet pieces in `scratch` if `pieces` (else _write_outputs reads them), its counts to the totals."""
    _create_candidate_tables(con)
    raw_counts = _stage_source(con, lake_dir, source, current)
    tombstone.refuse_erased(con, lake_dir)  # an erased person's records, whatever file: ERASED_PERSON
    redact_identifying_answers(con)
    redact_note_identifiers(con)
    create_snapshot_cover(con, [t.name for t in TABLES if _has_person(t.name)])
    resolve_tables(con)
    if pieces:
        _write_pieces(con, scratch, number)
    accounting.add_counts(con, raw_counts)


def resolve_tables(con, parents: str = "staged", after=None) -> None:
    """The record lifecycle and the reference checks over the candidates, table by table in reference
    order (parents are final before their children are checked); references look up view
    <parents>_<table>; after(table) runs once a table's staged view exists."""
    for table in TABLES:
        # each step only updates or judges the table's candidates: with none, it would change nothing
        # (a small build has several empty tables, each ~10 statements)
        if con.execute(f"SELECT EXISTS (FROM cand_{table.name})").fetchone()[0]:
            content = ", ".join(f'"{name}"' for name, _ in table.columns)
            if table.name == "cost":  # after the events' keys are final (event precedes cost in TABLES)
                inherit_event_keys(con)
            number_natural_key_collisions(con, table.name, content)
            retire_absent(con, table.name, _has_person(table.name))
            resolve_versions(con, table.name, content)
            for column, parent, parent_column, reason in REFERENCES.get(table.name, ()):
                check_reference(con, table.name, column, f"{parents}_{parent}", parent_column, reason)
        _refresh_staged(con, table.name)
        if after:
            after(table.name)


def _fresh_scratch(path: Path) -> Path:
    """An empty, owner-only scratch dir (a killed build's leftovers, PII included, are removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)  # the umask only takes bits away
    return path


def _use_spill_dir(con, path: Path) -> None:
    """Let DuckDB spill into the scratch dir; a connection that has spilled already keeps its own dir
    (DuckDB cannot switch it then)."""
    with contextlib.suppress(duckdb.NotImplementedException):
        con.execute(f"SET temp_directory = {quote_literal(str(path))}")


def _has_person(table_name: str) -> bool:
    return "source_person_id" in BY_NAME[table_name].column_names


def _create_candidate_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in table.all_columns)
        con.execute(
            f"CREATE OR REPLACE TABLE cand_{table.name} "
            f"({columns}, _reason VARCHAR, _reason_field VARCHAR, _natural_key BOOLEAN)"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {table.name}_outcome (row_id BIGINT, outcome VARCHAR, reason VARCHAR, field VARCHAR)"
        )


def _drop_candidate_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        con.execute(f"DROP VIEW IF EXISTS staged_{table.name}")
        con.execute(f"DROP TABLE IF EXISTS cand_{table.name}")
        con.execute(f"DROP TABLE IF EXISTS {table.name}_outcome")


def _stage_source(
    con, lake_dir: Path, source: SourceSpec, current: list[dict]
) -> list[tuple[str, str, str, int]]:
    """Run the profile's SQL for one source over its current files (manifest rows: ingested, the latest
    version of their path); returns (table, source, raw entity, raw rows) counts."""
    shas = sorted(row["file_sha256"] for row in current)
    counts = []
    profile_dir = SQL_DIR / source.staging_profile
    optional = profile_inputs.optional_raw_columns(profile_dir)
    for entity in source.entity_names:  # every one: a file may read another entity (a Medication)
        profile_inputs.register_raw(con, lake_dir, source, entity, shas)
        profile_inputs.add_missing_columns(con, f"raw_{entity}", optional.get(entity, ()))
    # the lifecycle's batch order, before the SQL: what one resource reads of another (an EOB's Claim)
    # picks versions by it (rwe_fhir_current_versions)
    create_batch_info(con, SourceRegistry((source,)), {source.name: current})
    macros = profile_macros(profile_dir)
    con.execute(macros)  # after the raw views: a table macro may read one
    set_identifier_variables(con, source)
    catalog = profile_inputs.catalog_key(con, macros)  # nothing below changes a raw view or macro
    for table in TABLES:
        for sql_file in profile_inputs.entity_sql_files(profile_dir, table.name):
            entity = sql_file.stem
            raw_rows = con.execute(f"SELECT count(*) FROM raw_{entity}").fetchone()[0]
            sql, params = profile_sql_text(sql_file), {"source": source.name}
            select = profile_inputs.select_list(con, table.name, sql, params, sql_file, catalog)
            inserted = con.execute(f"INSERT INTO cand_{table.name} SELECT {select} FROM ({sql})", params)
            # An in-memory database compresses its tables only at a checkpoint (it never makes one
            # itself): uncompressed, one source's candidates spilled 29 GB at 1M persons
            if inserted.fetchone()[0]:  # none inserted, nothing new to compress
                con.execute("CHECKPOINT")
            if source.format == "ndjson" and raw_rows:  # FHIR: a DELETE request is a row of its resource type
                mark_deleted(con, table.name, source.name, entity)
            counts.append((table.name, source.name, entity, raw_rows))
    # a genomics source's calls are staged by lib/genomics/staging.py, not by profile SQL
    staged_elsewhere = {GENOMICS_CALL_ENTITY} if source.kind == "genomics" else set()
    _count_not_modelled(con, source, {f.stem for f in profile_dir.glob("*/*.sql")} | staged_elsewhere)
    return counts


def _count_not_modelled(con, source: SourceSpec, modelled: set[str]) -> None:
    """Raw rows of the source's entities no SQL file of its profile stages (kept in raw only), per
    entity; for NDJSON, per resourceType (other_resource holds every type the registry does not list)."""
    for entity in source.entity_names:
        if entity in modelled:
            continue
        kind = "resource_type" if source.format == "ndjson" else f"'{entity}'"
        con.execute(
            f"INSERT INTO not_modelled SELECT $source, {kind}, count(*) FROM raw_{entity} GROUP BY ALL "
            "HAVING count(*) > 0",
            {"source": source.name},
        )


def redact_identifying_answers(con: duckdb.DuckDBPyConnection) -> int:
    """Blank the text answers to IDENTIFYING_ANSWERS questions; returns how many were blanked."""
    codes = [list(key) for key in IDENTIFYING_ANSWERS]
    condition = "value_as_string IS NOT NULL AND [vocabulary_id, code] IN (SELECT unnest($codes))"
    count = con.execute(f"SELECT count(*) FROM cand_event WHERE {condition}", {"codes": codes}).fetchone()[0]
    con.execute(f"UPDATE cand_event SET value_as_string = NULL WHERE {condition}", {"codes": codes})
    return count


def redact_note_identifiers(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """De-identify cand_note.note_text in place (lib/staging/deid.py; the rule is the comment on
    note text above); returns counts of notes, persons and changed notes."""
    return deid.redact_note_table(con, "cand_note", "cand_person_pii", "cand_care_site")


def check_reference(con, table_name: str, column: str, parent: str, parent_column: str, reason: str) -> None:
    """Quarantine valid rows of `table_name` whose non-null `column` matches no row of view `parent`
    (staged_<table>, or in an incremental run ref_<table>) of the same source system."""
    con.execute(
        f"""
        INSERT INTO {table_name}_outcome
        SELECT c.rowid, 'quarantined', '{reason}', '{column}'
        FROM cand_{table_name} c
        WHERE c._reason IS NULL AND c.{column} IS NOT NULL
          AND c.rowid NOT IN (SELECT row_id FROM {table_name}_outcome)
          AND NOT EXISTS (
              SELECT 1 FROM {parent} p
              WHERE p.source_system = c.source_system AND p.{parent_column} = c.{column})
        """
    )


def _refresh_staged(con, table_name: str) -> None:
    columns = ", ".join(f'"{name}"' for name in BY_NAME[table_name].column_names)
    # A view, not a copy: the table's candidates and outcomes no longer change once it is refreshed
    # (children only add to their own outcomes), and a copy of the event table doubles peak memory.
    con.execute(
        f"""
        CREATE OR REPLACE VIEW staged_{table_name} AS
        SELECT {columns} FROM cand_{table_name} c
        WHERE c._reason IS NULL AND c.rowid NOT IN (SELECT row_id FROM {table_name}_outcome)
        """
    )


def _outputs() -> dict[str, str]:
    """Each written staging table -> the query of one source's rows of it (over its candidates)."""
    outputs = {t.name: f"SELECT * FROM staged_{t.name}" for t in TABLES}
    outputs |= {name: _rejected_sql(o) for name, o in _REJECTED.items()}
    return outputs | {inc_state.PENDING_PREFIX + t: pending_sql(t) for t in inc_state.pending_tables()}


def _write_pieces(con, scratch: Path, number: int) -> None:
    """One source's staged, rejected and pending rows as Parquet pieces scratch/<table>/<number>.parquet."""
    for name, sql in _outputs().items():
        (scratch / name).mkdir(exist_ok=True)
        piece = quote_literal(str(scratch / name / f"{number}.parquet"))
        con.execute(f"COPY ({sql}) TO {piece} (FORMAT parquet)")


_REJECTED = {QUARANTINE: "quarantined", MERGED: "merged", RETIRED: "retired"}


def _write_outputs(con, lake_dir: Path, scratch: Path) -> None:
    """Each staging table from the pieces and the last source's candidates, in one Delta commit per table."""
    for name, live in _outputs().items():
        pieces = ", ".join(quote_literal(str(p)) for p in sorted((scratch / name).glob("*.parquet")))
        query = f"SELECT * FROM read_parquet([{pieces}]) UNION ALL {live}" if pieces else live
        rows = _rows_at_most(con, name, pieces) if name in layout.CLUSTERED else 0
        ranges = scratch / "ranges" / name
        _overwrite(lake_dir, name, layout.sorted_reader(con, name, query, rows, ranges))
        shutil.rmtree(ranges, ignore_errors=True)
    _overwrite(
        lake_dir, NOT_MODELLED, con.sql("SELECT * FROM not_modelled ORDER BY ALL").fetch_arrow_reader()
    )


def _rows_at_most(con, name: str, pieces: str) -> int:
    """An upper bound of a staging table's rows: its pieces' (from their footers) and its candidates'."""
    in_pieces = f"(SELECT count(*) FROM read_parquet([{pieces}]))" if pieces else "0"
    return con.execute(f"SELECT {in_pieces} + (SELECT count(*) FROM cand_{name})").fetchone()[0]


def pending_sql(table_name: str) -> str:
    """The candidates of `table_name` quarantined only for a missing parent, every column: a later
    batch may bring the parent (kept in staging/_pending_<table>, lib/staging/incremental.py)."""
    columns = ", ".join(f'c."{n}"' for n in BY_NAME[table_name].column_names)
    reasons = ", ".join(f"'{r}'" for r in inc_state.REFERENCE_REASONS)
    return (
        f"SELECT {columns} FROM {table_name}_outcome o JOIN cand_{table_name} c ON c.rowid = o.row_id "
        f"WHERE o.outcome = 'quarantined' AND o.reason IN ({reasons})"
    )


def _rejected_sql(outcome: str) -> str:
    parts = []
    for table in TABLES:
        rows = f"""
            SELECT '{table.name}' AS staging_table, source_system, record_key, _source_entity, _source_file,
                   _line_number, _batch_id, _reason AS reason_code, _reason_field AS field
            FROM cand_{table.name} c WHERE _reason IS NOT NULL AND NOT {IS_STATUS}
        """
        derived = f"""
            SELECT '{table.name}' AS staging_table, c.source_system, c.record_key, c._source_entity,
                   c._source_file, c._line_number, c._batch_id, o.reason AS reason_code, o.field
            FROM {table.name}_outcome o JOIN cand_{table.name} c ON c.rowid = o.row_id
            WHERE o.outcome = '{outcome}'
        """
        parts += [rows, derived] if outcome == "quarantined" else [derived]
    return " UNION ALL ".join(parts)


def _overwrite(lake_dir: Path, name: str, reader: pa.RecordBatchReader) -> None:
    """Replace a staging table in one Delta commit: readers see the old or the new table, never half.
    The commit carries the run's id (lib/staging/incremental_state.py, "State")."""
    path = lake.table_path(lake_dir, "staging", name)
    commit = _PLAN.get().commit(name)
    options = layout.write_options(name)  # files of a person range each (lib/staging/layout.py)
    lake.write(path, reader, mode="overwrite", schema_mode="overwrite", commit_properties=commit, **options)
