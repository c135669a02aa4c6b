"""`rwe erase`: remove one person from every layer and from Delta history; leave a tombstone.

Order (the lake lock held throughout, docs/operations.md "Erasure"):
1. the person's records: every (source, source person id) the crosswalk gives their person_id;
   their tombstone tokens (tombstone.py) from the staged identity fields, stored first, so a crash
   later still keeps them out of the next build;
2. what to remove, found in staging before anything changes: the provenance lines (file and line)
   of every staged, quarantined, merged or retired row of theirs (and of rows staging refused for
   any tombstone), their natural keys (as the CDM id maps hold them) and their person-level ids
   (source person ids, lab sample ids);
3. raw tables of their sources and the raw quarantine: rows from those lines, rows whose text
   column equals a person-level id, JSON/line text that contains one (FHIR references); VCF header
   lines keep their place with the sample name blanked. The manifest row of every file that lost
   rows gets rows_erased and landing_action (the sender's landing copy is not ours to rewrite: the
   operator deletes it, and the command prints which files);
4. linkage (tokens, pairs, review, decisions, crosswalk, history) and the CDM id maps, filtered;
5. the `build` job run in-process, as `rwe ingest` runs it: staging (which now quarantines anything
   of theirs as ERASED_PERSON), linkage, CDM, checks, publish;
6. every table that held them rewritten as a fresh Delta table (version 0, one commit): the old log
   entries (their per-file min/max statistics name values) and the superseded files go with the old
   directory, which is what a vacuum with zero retention plus deleting earlier commits amounts to.

Every other person keeps their person_id: the crosswalk of the others is untouched, and ids are
never renumbered.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import RweError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics.staging import SOURCE_SYSTEM as GENOMICS_SOURCE
from rwe_assets.lib.governance import history, tombstone
from rwe_assets.lib.linkage.keys import tombstone_key
from rwe_assets.lib.raw_ingest import MANIFEST, QUARANTINE, VCF_HEADER

HELP = (
    "erase a person (--source S --source-person-id ID, or --person-id N) from raw, staging, linkage, the "
    "CDM and Delta history, publish a new CDM, and refuse their records from now on (a keyed tombstone)"
)
LANDING_ACTION = "delete the landing copy: it holds rows of an erased person (erasure {})"
# Text columns searched for an id inside them (a FHIR reference, a quarantined line), not only equal.
TEXT_COLUMNS = {"resource_json", "raw_text"}
MIN_CONTAINED_ID = 8  # a shorter id could be anyone's value or text: its rows go by provenance only
LAKE_LAYERS = ("staging", "linkage", "ids")  # compacted whole after the rebuild
PUBLISH_STEP = "publish__rwe_duckdb"


class ErasureError(RweError):
    """The person cannot be found, or the request is ambiguous; nothing was changed."""


@dataclass
class Erasure:
    erasure_id: str
    person_id: int | None
    records: int
    rows_removed: dict[str, int] = field(default_factory=dict)  # lake table (relative path) -> rows
    tombstones: int = 0
    landing_files: list[str] = field(default_factory=list)
    tables_rewritten: int = 0
    build_ok: bool = False
    build_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # step -> seconds (erase, build, history)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="source system of the record (with --source-person-id)")
    parser.add_argument("--source-person-id", help="the person's id in that source")
    parser.add_argument("--person-id", type=int, help="the CDM person_id (all the person's records)")
    parser.add_argument(
        "--refused",
        action="store_true",
        help="no new person: remove the rows of erased persons sent again (staging refused them for a "
        "tombstone) from raw and from Delta history",
    )


def run(settings, args: argparse.Namespace) -> int:
    by_record = args.source is not None or args.source_person_id is not None
    if (by_record + (args.person_id is not None) + args.refused) != 1 or (
        by_record and not (args.source and args.source_person_id)
    ):
        print(
            "rwe erase: give --person-id, or --source and --source-person-id, or --refused", file=sys.stderr
        )
        return 2
    try:
        erasure = erase(
            settings,
            person_id=args.person_id,
            source=args.source,
            source_person_id=args.source_person_id,
            refused_only=args.refused,
        )
    except ErasureError as error:
        print(f"rwe erase: {error}", file=sys.stderr)
        return 2
    _print(settings, erasure)
    return 0 if erasure.build_ok else 1


def erase(
    settings,
    *,
    person_id: int | None = None,
    source: str | None = None,
    source_person_id: str | None = None,
    refused_only: bool = False,
) -> Erasure:
    """Erase one person (see the module docstring); raises ErasureError before changing anything when
    the person is not found. With refused_only, no person: only the rows staging refused for a
    tombstone (erased persons sent again) go, the way they go with every erasure."""
    from rwe_assets.lib.lake_lock import lake_lock

    started = time.monotonic()
    lake_dir = lake.require_local(settings.lake_dir, "erase")  # tables are swapped by folder rename
    with lake_lock(settings.data_dir, "rwe erase"):
        history.recover(lake_dir)
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
        erasure = Erasure(
            uuid.uuid4().hex[:12],
            *(
                _no_records(con)
                if refused_only
                else _records(con, lake_dir, person_id, source, source_person_id)
            ),
        )
        key = tombstone_key(settings)
        tombstone.check_key(lake_dir, key, record=True)
        tombstone.register(con, key)
        tokens = _collect(con, lake_dir)  # first the refusal: a crash after it still keeps them out
        _value_tables(con, erasure.person_id)
        if refused_only and not con.execute("SELECT count(*) FROM er_lines").fetchone()[0]:
            raise ErasureError("staging refused no rows of an erased person: nothing to remove")
        erasure.tombstones = tombstone.add(lake_dir, tokens, erasure.erasure_id)
        # the Spark build's Delta copy of the CDM (lib/spark/build.py), history and all: derived (the next
        # build on Spark writes it again), so removed first: a crash later in the erasure cannot leave it
        shutil.rmtree(lake_dir / "cdm", ignore_errors=True)
        touched = _erase_raw(con, lake_dir, erasure)
        _mark_manifest(con, lake_dir, touched, erasure)
        for layer in (
            ("linkage", "ids") if erasure.person_id is not None else ()
        ):  # refused rows never got there
            for path in history.delta_tables(lake_dir / layer):
                _count(
                    erasure,
                    lake_dir,
                    path,
                    history.rewrite(con, path, _lake_condition(con, path)),
                )
        con.close()
        erasure.phases["erase"] = time.monotonic() - started
        erasure.build_ok, erasure.build_errors = _build()
        erasure.phases["build"] = time.monotonic() - started - erasure.phases["erase"]
        for layer in LAKE_LAYERS:
            for path in history.delta_tables(lake_dir / layer):
                history.rewrite(None, path, None)
                erasure.tables_rewritten += 1
        erasure.phases["history"] = time.monotonic() - started - sum(erasure.phases.values())
        erasure.seconds = time.monotonic() - started
        _audit(settings, erasure)
    return erasure


def _records(con, lake_dir: Path, person_id, source, source_person_id) -> tuple[int | None, int]:
    """TEMP TABLE er_records(source_system, source_person_id) of the person; (person_id, records)."""
    crosswalk = lake.read_table(lake.table_path(lake_dir, "linkage", "person_crosswalk"))
    if crosswalk is None:
        raise ErasureError("no linkage/person_crosswalk in the lake: nothing has been built yet")
    con.register("er_crosswalk", crosswalk)
    if person_id is None:
        found = con.execute(
            "SELECT person_id FROM er_crosswalk WHERE source_system = ? AND source_person_id = ?",
            [source, source_person_id],
        ).fetchone()
        if found is None:
            raise ErasureError(f"no record of source {source!r} with that source person id in the crosswalk")
        person_id = found[0]
    con.execute(
        "CREATE TEMP TABLE er_records AS SELECT DISTINCT source_system, source_person_id, "
        "source_system || '|' || source_person_id AS record_id FROM er_crosswalk WHERE person_id = ?",
        [person_id],
    )
    records = con.execute("SELECT count(*) FROM er_records").fetchone()[0]
    if not records:
        raise ErasureError(f"person_id {person_id} is in no crosswalk row")
    return person_id, records


def _no_records(con) -> tuple[None, int]:
    con.execute(
        "CREATE TEMP TABLE er_records (source_system VARCHAR, source_person_id VARCHAR, record_id VARCHAR)"
    )
    return None, 0


def _collect(con, lake_dir: Path) -> pa.Table:
    """From staging, before anything changes: TEMP TABLES er_lines (file#line), er_keys (natural keys
    of the CDM id maps), er_ids (person-level ids); returns the person's tombstone tokens."""
    from rwe_assets.lib.linkage.crosswalk import register_staged_persons

    con.execute(
        "CREATE TEMP TABLE er_lines (line VARCHAR, staging_table VARCHAR, source_system VARCHAR, record_key VARCHAR)"
    )
    con.execute("CREATE TEMP TABLE er_keys (natural_key VARCHAR)")
    con.execute("CREATE TEMP TABLE er_ids AS SELECT DISTINCT source_person_id AS id FROM er_records")
    for path in history.delta_tables(lake_dir / "staging"):
        columns = _columns(con, path)
        if "source_person_id" not in columns:
            continue
        lake.register_view(con, "er_t", path)
        mine = "source_person_id IN (SELECT source_person_id FROM er_records)"
        if "source_system" in columns:
            mine = "(source_system, source_person_id) IN (SELECT (source_system, source_person_id) FROM er_records)"
        if "record_key" in columns:
            con.execute(
                "INSERT INTO er_lines SELECT _source_file || '#' || _line_number, $table, source_system, "
                f"record_key FROM er_t WHERE {mine}",
                {"table": path.name},
            )
            con.execute(
                f"INSERT INTO er_keys SELECT source_system || '|' || record_key FROM er_t WHERE {mine}"
            )
        for key in ("specimen_key", "call_key"):  # the genomic tables' natural keys (no sample's line is
            if key in columns:  # a VCF line: it holds every sample of the run)
                con.execute(f"INSERT INTO er_keys SELECT {key} FROM er_t WHERE {mine}")
        if "sample_id" in columns:
            con.execute(
                f"INSERT INTO er_ids SELECT sample_id FROM er_t WHERE {mine} AND sample_id IS NOT NULL"
            )
    for name in ("_quarantine", "_merged", "_retired"):  # older or refused versions of the same records
        if lake.register_view(con, "er_t", lake.table_path(lake_dir, "staging", name)):
            refused = name == "_quarantine"
            con.execute(
                "INSERT INTO er_lines SELECT _source_file || '#' || _line_number, staging_table, source_system, "
                "record_key FROM er_t WHERE (staging_table, source_system, record_key) IN "
                "(SELECT (staging_table, source_system, record_key) FROM er_lines)"
                + (" OR reason_code = $reason" if refused else ""),
                {"reason": tombstone.REASON} if refused else {},
            )  # rows staging refused for a tombstone (any erased person's record sent again) go too
    _refused_genomics(con, lake_dir)
    register_staged_persons(con, lake_dir, "er_staged")
    con.execute(
        "CREATE TEMP VIEW er_identity AS SELECT * FROM er_staged SEMI JOIN er_records USING (source_system, source_person_id)"
    )
    return con.sql(tombstone.tokens_sql(con, "er_identity")).to_arrow_table()


def _value_tables(con, person_id: int | None) -> None:
    """TEMP TABLES er_person (the person_id; empty without a person) and er_long_ids (the ids of
    er_ids that are MIN_CONTAINED_ID characters or more): the values the conditions over the lake
    name, bound here so that no condition's text holds one."""
    con.execute(
        "CREATE TEMP TABLE er_person AS SELECT CAST($p AS BIGINT) AS person_id WHERE $p IS NOT NULL",
        {"p": person_id},
    )
    con.execute(
        "CREATE TEMP TABLE er_long_ids AS SELECT id FROM er_ids WHERE length(id) >= $min_length",
        {"min_length": MIN_CONTAINED_ID},
    )


def _refused_genomics(con, lake_dir: Path) -> None:
    """Genomics staging's ERASED_PERSON rows: the manifest lines into er_lines, and TEMP TABLE er_calls
    (file, record, sample column) of the calls (a VCF line holds every sample: it cannot go by line)."""
    con.execute(
        "CREATE TEMP TABLE er_calls (_file_sha256 VARCHAR, record_number BIGINT, sample_index INTEGER)"
    )
    if lake.register_view(con, "er_t", lake.table_path(lake_dir, "staging", "specimen_quarantine")):
        con.execute(
            "INSERT INTO er_lines SELECT _source_file || '#' || _line_number, 'specimen', $source, NULL "
            "FROM er_t WHERE reason_code = $reason",
            {"source": GENOMICS_SOURCE, "reason": tombstone.REASON},
        )
    if lake.register_view(con, "er_t", lake.table_path(lake_dir, "staging", "variant_quarantine")):
        con.execute(
            "INSERT INTO er_calls SELECT _file_sha256, record_number, sample_index FROM er_t "
            "WHERE reason_code = $reason",
            {"reason": tombstone.REASON},
        )


def _erase_raw(con, lake_dir: Path, erasure: Erasure) -> dict[str, tuple[int, int]]:
    """Rewrite the raw tables of the person's sources and the raw quarantine without their rows;
    returns (rows stored, rows quarantined) removed per file sha256."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE er_sources AS "
        "SELECT source_system FROM er_records UNION SELECT source_system FROM er_lines"
    )
    sources = [s for (s,) in con.execute("SELECT source_system FROM er_sources").fetchall()]
    touched: dict[str, tuple[int, int]] = {}
    paths = [p for s in sources for p in history.delta_tables(lake.table_path(lake_dir, "raw", s))]
    for path in [*paths, lake.table_path(lake_dir, "raw", QUARANTINE)]:
        if not lake.exists(path):
            continue
        quarantine = path.name == QUARANTINE
        condition = _raw_condition(con, path, sources if quarantine else None)
        # the header names every sample of the run: theirs is blanked, the line stays
        transform = _blank_samples(con) if path.name == VCF_HEADER else None
        removed = history.rewrite(con, path, condition, transform=transform)
        _count(erasure, lake_dir, path, removed)
        for sha, rows in removed.items():
            stored, quarantined = touched.get(sha, (0, 0))
            touched[sha] = (stored, quarantined + rows) if quarantine else (stored + rows, quarantined)
    return touched


def _raw_condition(con, path: Path, sources: list[str] | None) -> str:
    """SQL over view er_t: the row is the person's (a provenance line, an id equal to a text column,
    or an id inside a JSON or line text)."""
    columns = _columns(con, path)
    parts = ["(_source_file || '#' || _line_number) IN (SELECT line FROM er_lines)"]
    if {"record_number", "sample_index"} <= set(columns):
        parts.append(
            "(_file_sha256, record_number, sample_index) IN "
            "(SELECT (_file_sha256, record_number, sample_index) FROM er_calls)"
        )
    text = [c for c, kind in columns.items() if kind == "VARCHAR" and not c.startswith("_")]
    if text:
        # a short id ('17') could equal anyone's value (a count, a code): those rows go by provenance only
        parts.append(
            f"list_has_any([{', '.join(_quote(c) for c in text)}], (SELECT list(id) FROM er_long_ids))"
        )
    for column in TEXT_COLUMNS & set(columns):
        parts.append(f"EXISTS (SELECT 1 FROM er_long_ids WHERE contains({column}, id))")
    condition = " OR ".join(parts)
    if sources is not None:  # the raw quarantine holds every source: those of er_sources
        condition = (
            f"source IN (SELECT source_system FROM er_sources) AND ({condition})" if sources else "false"
        )
    return condition


def _blank_samples(con) -> tuple[str, list[str]]:
    """The header text with each of the person's ids (er_ids: sample ids) blanked, and its parameters."""
    ids = [i for (i,) in con.execute("SELECT id FROM er_long_ids").fetchall()]
    expression = "text"
    for _ in ids:
        expression = f"replace({expression}, ?, '')"
    return expression, ids


def _lake_condition(con, path: Path) -> str | None:
    """SQL over view er_t for a linkage table or a CDM id map: the row names the person (er_person)."""
    columns = _columns(con, path)
    parts = []
    for column in ("record_id", "record_id_l", "record_id_r"):
        if column in columns:
            parts.append(f"{column} IN (SELECT record_id FROM er_records)")
    if {"source_system", "source_person_id"} <= set(columns):
        parts.append(
            "(source_system, source_person_id) IN (SELECT (source_system, source_person_id) FROM er_records)"
        )
    for column in ("person_id", "new_person_id"):
        if column in columns:
            parts.append(f"{column} IN (SELECT person_id FROM er_person)")
    if "natural_key" in columns:
        parts.append(
            "natural_key IN (SELECT natural_key FROM er_keys) "
            "OR regexp_replace(natural_key, '\\|[^|]*$', '') IN (SELECT natural_key FROM er_keys) "
            "OR starts_with(natural_key, (SELECT 'ppp|' || person_id || '|' FROM er_person)) "
            "OR EXISTS (SELECT 1 FROM er_long_ids WHERE contains(natural_key, id))"
        )
    return " OR ".join(parts) or None


def _mark_manifest(con, lake_dir: Path, touched: dict[str, tuple[int, int]], erasure: Erasure) -> None:
    """Rewrite the manifest (fresh) so it reconciles with what raw now holds: records_read, rows_stored
    and rows_quarantined of each file that lost rows go down by them, rows_erased says by how many (so
    records read from the file = records_read + rows_erased), and landing_action tells the operator to
    delete the landing copy; those files' landing paths are listed in `erasure`."""
    path = lake.table_path(lake_dir, "raw", MANIFEST)
    table = lake.open_table(path)
    if table is None or not touched:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE er_removed (sha VARCHAR, stored BIGINT, quarantined BIGINT)")
    con.executemany("INSERT INTO er_removed VALUES (?, ?, ?)", [(k, *v) for k, v in touched.items()])
    dataset = table.to_pyarrow_dataset()
    con.register("er_t", dataset)
    names = set(dataset.schema.names)
    prior = "coalesce(m.rows_erased, 0)" if "rows_erased" in names else "0"
    action = "m.landing_action" if "landing_action" in names else "NULL::VARCHAR"
    changed = f"""
        m.records_read - coalesce(r.stored + r.quarantined, 0) AS records_read,
        m.rows_stored - coalesce(r.stored, 0) AS rows_stored,
        m.rows_quarantined - coalesce(r.quarantined, 0) AS rows_quarantined,
        {prior} + coalesce(r.stored + r.quarantined, 0) AS rows_erased,
        CASE WHEN r.sha IS NOT NULL THEN ? ELSE {action} END AS landing_action"""
    kept = [f"m.{_quote(n)}" for n in dataset.schema.names if n not in _CHANGED]
    relation = con.sql(
        f"SELECT {', '.join(kept)}, {changed}, r.sha IS NOT NULL AS _touched FROM er_t m "
        "LEFT JOIN er_removed r ON r.sha = m.file_sha256 AND m.status = 'ingested'",
        params=[LANDING_ACTION.format(erasure.erasure_id)],
    ).to_arrow_table()
    con.unregister("er_t")
    listed = relation.filter(relation.column("_touched")).column("relative_path").to_pylist()
    erasure.landing_files = sorted(set(listed))
    schema = pa.schema(
        [dataset.schema.field(n) for n in dataset.schema.names if n not in _CHANGED]
        + [dataset.schema.field(n) for n in _CHANGED[:3]]
        + [pa.field("rows_erased", pa.int64()), pa.field("landing_action", pa.string())]
    )
    data = relation.drop_columns(["_touched"]).cast(schema)
    history.swap(path, pa.RecordBatchReader.from_batches(schema, data.to_batches()), table.metadata())


_CHANGED = ("records_read", "rows_stored", "rows_quarantined", "rows_erased", "landing_action")


def _build() -> tuple[bool, list[str]]:
    """The `build` job in this process, as `rwe ingest` runs it (the lake lock is re-entrant). It did
    its part when the publish step succeeded: the published CDM is then rebuilt without the person;
    a failure elsewhere (an analytics step) is reported, not fatal to the erasure."""
    import dagster as dg

    from rwe_assets.cli.ingest import execute_build, run_errors
    from rwe_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = execute_build(defs, instance)
    published = any(
        event.event_type_value == "STEP_SUCCESS" and event.step_key == PUBLISH_STEP
        for event in result.all_events
    )
    return published, [message for _, message in run_errors(result)]


def _audit(settings, erasure: Erasure) -> None:
    """One audit row: counts and lake paths only, never an id of the person."""
    from rwe_assets.lib.governance import audit

    what = {
        "erasure_id": erasure.erasure_id,
        "records": erasure.records,
        "rows_removed": sum(erasure.rows_removed.values()),
        "tables": sorted(erasure.rows_removed),
        "tombstones_added": erasure.tombstones,
        "tables_rewritten": erasure.tables_rewritten,
        "landing_files_to_delete": erasure.landing_files,
        "seconds": round(erasure.seconds, 1),
    }
    audit.record(settings, "erasure", what=what, outcome="ok" if erasure.build_ok else "build_failed")


def _count(erasure: Erasure, lake_dir: Path, path: Path, removed: dict[str, int]) -> None:
    rows = sum(removed.values())
    if rows:
        erasure.rows_removed[path.relative_to(lake_dir).as_posix()] = rows


def _columns(con, path: Path) -> dict[str, str]:
    table = lake.open_table(path)
    con.register("er_probe", table.to_pyarrow_dataset())
    columns = {name: kind for name, kind, *_ in con.execute("DESCRIBE SELECT * FROM er_probe").fetchall()}
    con.unregister("er_probe")
    return columns


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _print(settings, erasure: Erasure) -> None:
    state = "done" if erasure.build_ok else "lake erased, but the rebuild FAILED"
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in erasure.phases.items())
    print(f"erasure {erasure.erasure_id}: {state} ({erasure.seconds:.1f} s: {phases})")
    print(f"  records of the person: {erasure.records}; rows removed: {sum(erasure.rows_removed.values()):,}")
    for table, rows in sorted(erasure.rows_removed.items()):
        print(f"    {table}: {rows:,}")
    print(
        f"  tombstones added: {erasure.tombstones}; Delta tables rewritten without history: {erasure.tables_rewritten}"
    )
    for error in erasure.build_errors:
        print(f"  build error: {error}", file=sys.stderr)
    if not erasure.build_ok:
        print(
            "  the published CDM still holds the person until a build succeeds: fix the error and run "
            "`rwe ingest` (the staging layer refuses their records already)",
            file=sys.stderr,
        )
    if erasure.landing_files:
        print(
            "  landing files that hold the person's rows (the sender's copies, not rewritten): delete them:"
        )
        for name in erasure.landing_files:
            print(f"    {settings.landing_dir / name}")
