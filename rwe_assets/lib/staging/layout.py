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
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _File:
    low: str | None  # the file's least and greatest person (None: every row has none)
    high: str | None


def clustered_query(name: str, query: str) -> str:
    """The query of a full write of staging table `name`, in the clustered order if it has one."""
    return f"SELECT * FROM ({query}) ORDER BY {ORDER}" if name in CLUSTERED else query


def batch_rows(name: str) -> int:
    """Rows per batch of a full write of `name` (the rows streamed to Delta)."""
    return BATCH_ROWS if name in CLUSTERED else 122_880


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
