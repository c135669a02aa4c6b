"""Incremental staging (issue 26): a run that finds only new raw batches stages the records of those
batches and the earlier versions they touch, and merges the result into the staging tables by record
key; anything else is a full build (docs/operations.md, "Incremental refresh").

The plan, its fallback rule and the run state are in incremental_state.py; which earlier rows a run
stages again and the SQL of its changes, in incremental_scope.py. This module runs it: stages each
source's new batches with their scope, merges the changes by record key (one Delta commit per table),
lists them in _touched, and gives the staged tables' digests a full build is compared with.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import CALL_ENTITY as GENOMICS_CALL_ENTITY
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.sources import SourceRegistry
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging import deid, layout, profile_inputs
from rwe_assets.lib.staging.incremental_scope import (
    PERSON_AGGREGATES,
    add_scope_to_candidates,
    aggregate_persons_across_batches,
    aggregate_scope_rows,
    change_queries,
    create_reference_view,
    pending_changes,
    refuse_cross_batch_links,
    refuse_person_aggregates_across_batches,
    register_prior,
    released_quarantine_sql,
    select_scope,
)
from rwe_assets.lib.staging.incremental_state import (
    NO_TOUCHED,
    PENDING_PREFIX,
    FullBuildNeeded,
    Plan,
    pending_tables,
    staging_path,
    write_state,
    write_touched_rows,
)
from rwe_assets.lib.staging.lifecycle import (
    create_batch_info,
    create_snapshot_cover,
    inherit_event_keys,
    number_natural_key_collisions,
)
from rwe_assets.lib.staging.model import BY_NAME, TABLES
from rwe_assets.lib.staging.sql_templates import profile_sql_text

# ---- the run ------------------------------------------------------------------------------------


def build_changes(
    con: duckdb.DuckDBPyConnection, lake_dir, registry: SourceRegistry, plan: Plan, scratch: Path
):
    """An incremental (or unchanged: nothing to write) run: stage each source's new batches with their
    scope, merge the changes, then account for every table as written. Returns the StagingReport."""
    from rwe_assets.lib.staging import accounting, build

    sources = [s for s in registry if s.name in plan.new]
    touched = {}
    if sources:
        register_prior(con, lake_dir)
        for number, source in enumerate(sources):
            _stage_changes(con, lake_dir, source, plan, scratch, number)
        build._drop_candidate_tables(con)
        touched = _write_changes(con, lake_dir, scratch, plan)
    _count_raw(con, lake_dir, registry, plan, {s.name for s in sources})
    if sources:
        lake.write(
            staging_path(lake_dir, build.NOT_MODELLED),
            con.sql("SELECT * FROM not_modelled ORDER BY ALL").to_arrow_table(),
            mode="overwrite",
            schema_mode="overwrite",
            commit_properties=plan.commit(build.NOT_MODELLED),
        )
        write_state(con, lake_dir, plan)
    accounting.count_tables(con, lake_dir)
    return replace(accounting.report(con, lake_dir, plan.mode, plan.reason), touched=touched)


def _stage_changes(con, lake_dir, source, plan: Plan, scratch: Path, number: int) -> None:
    """One source: its new batches' candidates, the prior rows in their scope, the lifecycle and
    references as in a full build; the changes go to Parquet pieces in `scratch`."""
    from rwe_assets.lib.staging import build

    build._create_candidate_tables(con)
    build._stage_source(con, lake_dir, source, plan.new[source.name])
    _aggregate_over_earlier_batches(con, lake_dir, source, plan)
    refuse_cross_batch_links(
        con,
        lake_dir,
        source,
        [r["file_sha256"] for r in plan.new[source.name]],
        [r["file_sha256"] for r in plan.current[source.name]],
    )
    _refuse_what_only_a_full_build_stages_alike(con, lake_dir)
    build.redact_identifying_answers(con)
    for table in TABLES:  # the new rows' final keys, before the scope is looked up by them
        if table.name == "cost":
            inherit_event_keys(con)
        number_natural_key_collisions(con, table.name, ", ".join(f'"{n}"' for n, _ in table.columns))
    select_scope(con, source.name)
    add_scope_to_candidates(con, [t.name for t in TABLES if t.name != "note"])
    aggregate_scope_rows(con, source)
    _redact_new_notes(con, source.name)
    add_scope_to_candidates(con, ["note"])  # redacted when first staged
    create_batch_info(
        con, SourceRegistry((source,)), {source.name: plan.current[source.name]}, plan.staged_batches
    )
    create_snapshot_cover(con, [t.name for t in TABLES if "source_person_id" in t.column_names])

    def after(table: str) -> None:
        if table in ("person_source", "visit", "event"):
            create_reference_view(con, table, source.name)

    build.resolve_tables(con, parents="ref", after=after)
    refuse_person_aggregates_across_batches(con, source)
    _write_change_pieces(con, scratch, number)


def _aggregate_over_earlier_batches(con, lake_dir, source, plan: Plan) -> None:
    """incremental_scope.aggregate_persons_across_batches with the profile SQL of its table."""
    from rwe_assets.lib.staging import build

    con.execute("DROP TABLE IF EXISTS inc_aggregated")  # another source's
    if source.staging_profile not in PERSON_AGGREGATES:
        return
    table, entity, _ = PERSON_AGGREGATES[source.staging_profile]
    sql_file = build.SQL_DIR / source.staging_profile / table / f"{entity}.sql"
    sql, params = profile_sql_text(sql_file), {"source": source.name}
    aggregate_persons_across_batches(
        con,
        lake_dir,
        source,
        sql,
        profile_inputs.select_list(con, table, sql, params, sql_file),
        [r["file_sha256"] for r in plan.new[source.name]],
        [r["file_sha256"] for r in plan.current[source.name]],
    )


def clear_pieces(scratch: Path) -> None:
    """Remove the Parquet pieces a run given up for a full build wrote (DuckDB's spill dir stays)."""
    for path in scratch.iterdir():
        if path.is_dir() and path.name != "spill":
            shutil.rmtree(path)


def _refuse_what_only_a_full_build_stages_alike(con, lake_dir) -> None:
    """Raise FullBuildNeeded when a new batch holds records of an erased person (a full build refuses
    every staged row of theirs, and rows naming only their id) or changes the identifiers of a person
    with staged notes (a full build redacts those notes with the new identifiers too)."""
    # every candidate person: their identity where a person row states it, else their record alone
    others = [t.name for t in TABLES if "source_person_id" in t.column_names and t.name != "person_pii"]
    con.execute(
        "CREATE OR REPLACE TEMP VIEW inc_candidate_persons AS SELECT * FROM cand_person_pii "
        + " ".join(f"UNION ALL BY NAME SELECT source_system, source_person_id FROM cand_{t}" for t in others)
    )
    if tombstone.register_refused(con, lake_dir, "inc_candidate_persons", "inc_refused"):
        raise FullBuildNeeded("a new batch holds records of an erased person")
    identity = ", ".join(f'"{c}"' for c in BY_NAME["person_pii"].column_names if not c.startswith("_"))
    changed = con.execute(
        f"SELECT count(*) FROM (SELECT {identity} FROM cand_person_pii WHERE _reason IS NULL "
        f"EXCEPT SELECT {identity} FROM staged_prior_person_pii) "
        "WHERE (source_system, source_person_id) IN (SELECT source_system, source_person_id FROM staged_prior_note)"
    ).fetchone()[0]
    if changed:
        raise FullBuildNeeded("a new batch changes the identifiers of persons with staged notes")


def _redact_new_notes(con, source: str) -> None:
    """De-identify the new notes with their persons' identifiers (new and prior rows in scope: every
    person of a new note is) and the facility names of every care site of the source."""
    con.execute(
        "CREATE OR REPLACE TEMP VIEW deid_sites AS SELECT care_site_name FROM cand_care_site "
        f"UNION ALL SELECT care_site_name FROM staged_prior_care_site WHERE source_system = {quote_literal(source)}"
    )
    deid.redact_note_table(con, "cand_note", "cand_person_pii", "deid_sites")


def _write_change_pieces(con, scratch: Path, number: int) -> None:
    from rwe_assets.lib.staging import build

    queries = {(t.name, kind): sql for t in TABLES for kind, sql in change_queries(t.name).items()}
    for table in pending_tables():
        for kind, sql in pending_changes(table, build.pending_sql(table)).items():
            queries[(PENDING_PREFIX + table, kind)] = sql
    quarantined = build._rejected_sql("quarantined")
    released = f"""
        SELECT q.* FROM quarantine_prior q JOIN ({released_quarantine_sql()}) r
        USING (staging_table, source_system, record_key, _source_entity, _source_file, _line_number)
    """
    queries[(build.QUARANTINE, "upsert")] = f"{quarantined} EXCEPT ALL {released}"
    queries[(build.QUARANTINE, "delete")] = f"{released} EXCEPT ALL ({quarantined})"
    for name in layout.CLUSTERED:  # the staged rows of the changed keys: the files the merge reads
        changed = " UNION ALL ".join(
            f"SELECT source_system, record_key FROM read_parquet({_piece(scratch, name, kind, number)})"
            for kind in ("upsert", "delete")  # written before this query (dict order)
        )
        queries[(name, "prior")] = (
            f"SELECT source_system, record_key, {layout.PERSON} FROM scope_{name} WHERE NOT _pending "
            f"AND (source_system, record_key) IN ({changed})"
        )
    queries[(build.MERGED, "upsert")] = build._rejected_sql("merged")
    queries[(build.RETIRED, "upsert")] = build._rejected_sql("retired")
    for (name, kind), sql in queries.items():
        (scratch / name).mkdir(exist_ok=True)
        con.execute(f"COPY ({sql}) TO {_piece(scratch, name, kind, number)} (FORMAT parquet)")


def _piece(scratch: Path, name: str, kind: str, number: int) -> str:
    return quote_literal(str(scratch / name / f"{kind}_{number}.parquet"))


MERGE_KEYS = {
    "_quarantine": [
        "staging_table",
        "source_system",
        "record_key",
        "_source_file",
        "_line_number",
        "reason_code",
    ],
    **{
        PENDING_PREFIX + t: ["source_system", "record_key", "_source_file", "_line_number"]
        for t in pending_tables()
    },
}


def _write_changes(con, lake_dir, scratch: Path, plan: Plan) -> dict[str, int]:
    """Merge each table's changes in one commit; returns the rows changed per canonical table."""
    from rwe_assets.lib.staging import build

    touched = {}
    pending = [PENDING_PREFIX + t for t in pending_tables()]
    for name in [*(t.name for t in TABLES), build.QUARANTINE, build.MERGED, build.RETIRED, *pending]:
        if not (scratch / name).is_dir():
            continue
        upserts, deletes = (_pieces(con, scratch / name, kind) for kind in ("upsert", "delete"))
        if name in (build.MERGED, build.RETIRED):
            if upserts.num_rows:  # outcomes of rows that were staged or pending: added, never replaced
                lake.write(
                    staging_path(lake_dir, name), upserts, mode="append", commit_properties=plan.commit(name)
                )
            continue
        prior = _pieces(con, scratch / name, "prior") if name in layout.CLUSTERED else None
        merge_table(
            lake_dir,
            name,
            upserts,
            deletes,
            plan,
            MERGE_KEYS.get(name, ["source_system", "record_key"]),
            prior,
        )
        if name in BY_NAME:
            touched[name] = upserts.num_rows + deletes.num_rows
    _write_touched(con, lake_dir, scratch, plan)
    return touched


def _pieces(con, folder: Path, kind: str):
    pieces = ", ".join(quote_literal(str(p)) for p in sorted(folder.glob(f"{kind}_*.parquet")))
    if not pieces:
        return con.sql("SELECT 1 AS none WHERE false").to_arrow_table()
    return con.sql(f"SELECT * FROM read_parquet([{pieces}])").to_arrow_table()


def _write_touched(con, lake_dir, scratch: Path, plan: Plan) -> None:
    """staging/_touched: the rows of the canonical tables this run inserted, changed or removed, with
    the provenance of the row written or removed (an erasure reads it as it reads every staging table)."""
    parts = []
    for table in TABLES:
        person = "source_person_id" if "source_person_id" in table.column_names else "NULL"
        for kind in ("upsert", "delete"):
            pieces = sorted((scratch / table.name).glob(f"{kind}_*.parquet"))
            if pieces:
                files = ", ".join(quote_literal(str(p)) for p in pieces)
                parts.append(
                    f"SELECT '{table.name}' AS staging_table, source_system, record_key, "
                    f"{person}::VARCHAR AS source_person_id, '{kind}' AS change, _source_file, _line_number "
                    f"FROM read_parquet([{files}])"
                )
    write_touched_rows(lake_dir, plan, con.sql(" UNION ALL ".join(parts) or NO_TOUCHED).to_arrow_table())


def _count_raw(con, lake_dir, registry: SourceRegistry, plan: Plan, changed: set[str]) -> None:
    """raw_counts of every staged source over its current files (what the written tables account for),
    and not_modelled: recounted for the changed sources, as last written for the others."""
    from rwe_assets.lib.staging import build

    con.execute("DELETE FROM not_modelled")
    if lake.register_parquet_view(con, "not_modelled_prior", staging_path(lake_dir, build.NOT_MODELLED)):
        con.execute("INSERT INTO not_modelled SELECT * FROM not_modelled_prior")
    con.execute("DELETE FROM not_modelled WHERE source_system IN (SELECT unnest($s))", {"s": sorted(changed)})
    for source in (s for s in registry if s.staging_profile):
        shas = sorted(r["file_sha256"] for r in plan.current[source.name])
        profile = build.SQL_DIR / source.staging_profile
        for entity in source.entity_names:
            profile_inputs.register_raw(con, lake_dir, source, entity, shas)
        for table in TABLES:
            for sql_file in profile_inputs.entity_sql_files(profile, table.name):
                n = con.execute(f"SELECT count(*) FROM raw_{sql_file.stem}").fetchone()[0]
                con.execute(
                    "INSERT INTO raw_counts VALUES (?, ?, ?, ?)", [table.name, source.name, sql_file.stem, n]
                )
        if source.name in changed:
            staged_elsewhere = {GENOMICS_CALL_ENTITY} if source.kind == "genomics" else set()
            build._count_not_modelled(
                con, source, {f.stem for f in profile.glob("*/*.sql")} | staged_elsewhere
            )


# ---- merge: one Delta commit per table ----------------------------------------------------------


def merge_table(lake_dir, name: str, upserts, deletes, plan: Plan, key: list[str], prior=None) -> None:
    """One Delta commit on staging/<name>: rows of `deletes` (Arrow, by key) removed, rows of
    `upserts` updated by key or inserted (the two share no key); nothing written when both are empty.
    With `prior` (the key and person of every staged row replaced or deleted; a clustered table,
    lib/staging/layout.py), the merge reads only the files that can hold those persons, and checks
    that it matched exactly those rows."""
    if upserts.num_rows == 0 and deletes.num_rows == 0:
        return
    source = pa.concat_tables(
        [
            upserts.append_column("_delete", pa.array([False] * upserts.num_rows, pa.bool_())),
            _keys_only(deletes, upserts.schema, key).append_column(
                "_delete", pa.array([True] * deletes.num_rows, pa.bool_())
            ),
        ]
    )
    on = " AND ".join(f't."{k}" = s."{k}"' for k in key)
    table = lake.open_table(staging_path(lake_dir, name))
    where = layout.merge_predicate(table, prior[layout.PERSON].to_pylist()) if prior is not None else None
    merger = table.merge(
        source, f"{where} AND {on}" if where else on, source_alias="s", target_alias="t",
        commit_properties=plan.commit(name),
    )  # fmt: skip
    before = table.version()
    metrics = (
        merger.when_matched_delete("s._delete")
        .when_matched_update_all("NOT s._delete", except_cols=["_delete"])
        .when_not_matched_insert_all("NOT s._delete", except_cols=["_delete"])
        .execute()
    )
    if prior is not None:
        try:
            _check_matched(name, metrics, upserts, deletes, prior)
        except RuntimeError:
            # the merge has committed: put the version before it back as the latest, so no reader
            # meets the duplicate (the restore carries no run state: the next run is full)
            table.restore(before)
            raise


def _check_matched(name: str, metrics: dict, upserts, deletes, prior) -> None:
    """The merge must have replaced and deleted exactly the prior rows: a staged row of a changed key
    outside them would have been kept beside its new version. Raises (the run fails loudly; its
    state is not written, so the next run is a full build) instead of leaving a duplicate."""
    con = duckdb.connect()
    try:
        con.register("u", upserts)
        con.register("p", prior)
        (replaced,) = con.execute(
            "SELECT count(*) FROM u WHERE (source_system, record_key) IN (SELECT source_system, record_key FROM p)"
        ).fetchone()
    finally:
        con.close()
    expected = (upserts.num_rows - replaced, replaced, deletes.num_rows)
    found = tuple(metrics.get(f"num_target_rows_{kind}") for kind in ("inserted", "updated", "deleted"))
    if found != expected:
        raise RuntimeError(
            f"staging/{name}: the merge inserted, updated and deleted {found} rows where the scope "
            f"says {expected}: a staged row of a changed record lay outside the scope"
        )


def _keys_only(deletes, schema, key: list[str]):
    """`deletes` with the columns of `schema`: its key columns, nulls for the rest."""
    return pa.table(
        {
            f.name: deletes[f.name].cast(f.type) if f.name in key else pa.nulls(deletes.num_rows, f.type)
            for f in schema
        }
    )


# ---- the proof: staged tables as digests ---------------------------------------------------------


def staged_digests(lake_dir, exclude: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Per canonical staging table: (rows, md5 over its rows sorted), columns in `exclude` left out
    (an ingest time differs between two lakes landed apart). Equal digests: the same rows."""
    con = duckdb.connect()
    digests = {}
    for table in TABLES:
        columns = [n for n in table.column_names if n not in exclude]
        if not lake.register_parquet_view(con, "t", staging_path(lake_dir, table.name)):
            digests[table.name] = (0, "")
            continue
        row = ", ".join(f'"{c}"' for c in columns)
        digests[table.name] = con.execute(
            f"SELECT count(*), coalesce(md5(string_agg(h, ',' ORDER BY h)), '') "
            f"FROM (SELECT md5(CAST(ROW({row}) AS VARCHAR)) AS h FROM t)"
        ).fetchone()
    con.close()
    return digests
