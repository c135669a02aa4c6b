"""The file layout of the person-scoped staging tables (issue 26): rows clustered by person, so that an
incremental run's Delta merge reads and rewrites only the files holding the persons it changes.

A staging table with a person column is written sorted by (source_person_id, source_system,
record_key) into files of about FILE_BYTES, so each file holds a narrow range of persons, and the
Delta log's per-file statistics (min and max source_person_id) tell which files can hold a given
person. A merge (lib/staging/incremental.merge_table) then restricts its target to the files whose
range holds a person of a prior row it replaces or deletes (`merge_predicate`): delta-rs reads only
those files (a static predicate on the target prunes files by their statistics) and rewrites only
those among them with a matched row. Rows with new keys are inserted without reading anything.

The merge writes its output (survivors of the files it rewrote, and the inserts) unsorted, in one
file spanning many persons, which later merges then read: the layout drifts with every merge that
touches many files and is restored by the next full staging build. A lake staged before this layout
(one file per table) needs no migration: its merges read that one file, as before.

A full write sorts a large table range by range (`sorted_reader`): one ORDER BY over the whole event
table spilled 43 GB at 1M persons and filled the disk. The rows are first split by person range (bounds
from a sample of persons) into Parquet files per range, in one scan, then each range is sorted on its
own and streamed after the one before: the same rows in the same order, with a spill of one range.
"""

from __future__ import annotations

import shutil
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging.model import TABLES

PERSON = "source_person_id"
CLUSTERED = tuple(t.name for t in TABLES if PERSON in t.column_names)
ORDER = f"{PERSON}, source_system, record_key"
# Parquet bytes per file of a clustered table: small enough that a batch's persons fall in a few
# files, large enough that a full read of the table opens few (10k persons: event in 20 files).
FILE_BYTES = 4 * 1024 * 1024
# Rows per Arrow batch handed to the Delta writer: delta-rs spreads batches over parallel writers, so
# a file can join the end of one batch to the start of another; large batches keep that to one file
# per batch boundary (a few hundred MB of Arrow at most: under the staging memory limit).
BATCH_ROWS = 500_000
# Rows of a clustered table beyond which its full write sorts range by range: one sort of 150M rows
# spilled 43 GB (1M persons); one of 15M rows (100k persons) fits the disk and is 18 s faster than the
# ranges' extra scans (count, sample, split), so only a sort past ~6 GB of spill is cut.
SORT_ROWS = 20_000_000
# Rows per range: its sort (~0.5 KB a row in DuckDB's sort) stays near 1 GB, under the staging memory
# limit, so it rarely spills.
RANGE_ROWS = 2_000_000
SAMPLE_ROWS = 100_000  # persons sampled for the range bounds: ranges within a few % of RANGE_ROWS


@dataclass(frozen=True)
class _File:
    low: str | None  # the file's least and greatest person (None: every row has none)
    high: str | None


def sorted_reader(
    con: duckdb.DuckDBPyConnection, name: str, query: str, rows: int, scratch: Path
) -> pa.RecordBatchReader:
    """The rows of a full write of staging table `name` (at most `rows` of them), in the clustered order
    if it has one: sorted at once, or range by range (RANGE_ROWS each) in `scratch` when there are over
    SORT_ROWS."""
    if name not in CLUSTERED:
        return con.sql(query).fetch_arrow_reader(batch_size=122_880)
    bounds = _range_bounds(con, query, -(-rows // RANGE_ROWS)) if rows > SORT_ROWS else []
    if not bounds:
        return con.sql(f"SELECT * FROM ({query}) ORDER BY {ORDER}").fetch_arrow_reader(batch_size=BATCH_ROWS)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT *, {_range_of(bounds)} AS _range FROM ({query})) "
        f"TO {quote_literal(str(scratch))} (FORMAT parquet, PARTITION_BY (_range))"
    )
    relation = con.sql(query)  # the types as the one-sort path streams them (a Parquet trip may differ)
    columns = ", ".join(
        f'CAST("{c}" AS {t}) AS "{c}"' for c, t in zip(relation.columns, relation.types, strict=True)
    )
    ranges = [scratch / f"_range={i}" for i in range(len(bounds) + 1)]
    queries = [
        f"SELECT {columns} FROM read_parquet({quote_literal(str(r / '*.parquet'))}, hive_partitioning = false) "
        f"ORDER BY {ORDER}"
        for r in ranges
        if r.exists()
    ]
    schema = con.sql(f"{queries[0]} LIMIT 0").fetch_arrow_reader().schema
    return pa.RecordBatchReader.from_batches(schema, _in_turn(con, queries, schema))


def _in_turn(con: duckdb.DuckDBPyConnection, queries: list[str], schema: pa.Schema):
    """The ranges' rows one range after the other (one sort at a time), in batches of BATCH_ROWS
    across range ends, as the one sort streams them: the Delta writer cuts the same files."""
    pending: list[pa.RecordBatch] = []
    for query in queries:
        for batch in con.sql(query).fetch_arrow_reader(batch_size=BATCH_ROWS):
            pending.append(batch)
            if sum(b.num_rows for b in pending) >= BATCH_ROWS:
                rows = pa.Table.from_batches(pending, schema)
                yield from rows.slice(0, BATCH_ROWS).combine_chunks().to_batches()
                pending = rows.slice(BATCH_ROWS).to_batches()
    if pending:
        yield from pa.Table.from_batches(pending, schema).combine_chunks().to_batches()


def _range_bounds(con: duckdb.DuckDBPyConnection, query: str, ranges: int) -> list[str]:
    """ranges - 1 persons that cut the sampled persons into equal parts, ascending, distinct."""
    sample = sorted(
        person
        for (person,) in con.execute(
            f"SELECT {PERSON} FROM ({query}) WHERE {PERSON} IS NOT NULL "
            f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (7)"
        ).fetchall()
    )
    cuts = {sample[len(sample) * i // ranges] for i in range(1, ranges)} if sample else set()
    return sorted(cuts)


def _range_of(bounds: list[str], low: int = 0, high: int | None = None) -> str:
    """SQL of a row's range: the number of `bounds` at or below its person, by binary search (a NULL
    person falls in the last range, as ORDER BY puts NULLs last)."""
    high = len(bounds) if high is None else high
    if low == high:
        return str(low)
    middle = (low + high + 1) // 2
    return (
        f"CASE WHEN {PERSON} < {quote_literal(bounds[middle - 1])} THEN {_range_of(bounds, low, middle - 1)} "
        f"ELSE {_range_of(bounds, middle, high)} END"
    )


def write_options(name: str) -> dict:
    """write_deltalake options of a full write of `name` (files of FILE_BYTES when clustered)."""
    return {"target_file_size": FILE_BYTES} if name in CLUSTERED else {}


def _files(table: DeltaTable) -> list[_File] | None:
    """Each file's person range from the Delta log's statistics; None when a file has none."""
    actions = pa.table(table.get_add_actions(flatten=True))
    low, high = f"min.{PERSON}", f"max.{PERSON}"
    if low not in actions.column_names or high not in actions.column_names:
        return None
    files = []
    for row in actions.select([low, high, f"null_count.{PERSON}", "num_records"]).to_pylist():
        if row[low] is None and row["num_records"] and row[f"null_count.{PERSON}"] != row["num_records"]:
            return None  # statistics missing for this file
        files.append(_File(row[low], row[high]))
    return files


def merge_predicate(table: DeltaTable, prior_persons: list[str | None], alias: str = "t") -> str | None:
    """A predicate on the merge's target that holds for every row of a person in `prior_persons`
    (the persons of the prior rows the merge replaces or deletes): the person ranges of the files
    that can hold one, per the file statistics (a string statistic cut short still bounds the value).
    None: no restriction (a file without statistics); 'false' when no prior row is replaced."""
    files = _files(table)
    if files is None:
        return None
    persons = sorted(p for p in prior_persons if p is not None)
    ranges = [(f.low, f.high) for f in files if f.low is not None and _holds_any(f, persons)]
    terms = [
        f"({alias}.{PERSON} >= {quote_literal(low)} AND {alias}.{PERSON} <= {quote_literal(high)})"
        for low, high in _merged(ranges)
    ]
    if len(persons) < len(prior_persons):
        terms.append(f"{alias}.{PERSON} IS NULL")
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def _holds_any(file: _File, persons: list[str]) -> bool:
    at = bisect_left(persons, file.low)
    return at < len(persons) and persons[at] <= file.high


def _merged(ranges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: list[list[str]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]
