"""Rewrite a Delta table without its history (`rwe erase`): a fresh table (version 0, one commit) of
the rows kept, put in place of the old directory, whose earlier commits and superseded files go with it.
That is what a zero-retention vacuum plus deleting the earlier commits amounts to; the old commits'
`add` actions carry per-file min/max statistics of the values removed, so they must go too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake

NEW, OLD = ".erase-new", ".erase-old"  # siblings of a table while it is rewritten


def rewrite(con, path: Path, condition: str | None, transform=None) -> dict[str, int]:
    """Replace the Delta table at `path` by a fresh one (version 0, one commit) holding its current
    rows except those matching `condition` (SQL over view er_t); returns rows removed per file sha256
    ('' when the table has no _file_sha256). The old directory (every earlier commit and file) goes."""
    table = lake.open_table(path)
    if table is None:
        return {}
    dataset = table.to_pyarrow_dataset()
    metadata = table.metadata()
    removed: dict[str, int] = {}
    own = con is None
    con = con or duckdb.connect()
    con.register("er_t", dataset)
    if condition:
        sha = "_file_sha256" if "_file_sha256" in dataset.schema.names else "''"
        removed = dict(
            con.execute(f"SELECT {sha}, count(*) FROM er_t WHERE {condition} GROUP BY ALL").fetchall()
        )
    if condition and not removed and transform is None:  # nothing of theirs: the table stays as it is
        con.unregister("er_t")
        return removed
    select = "*"
    params: list = []
    if transform is not None:
        expression, params = transform
        select = f"* REPLACE ({expression} AS text)"
    where = f"WHERE NOT coalesce({condition}, false)" if condition else ""
    reader = con.execute(f"SELECT {select} FROM er_t {where}", params).fetch_record_batch(122_880)
    swap(path, cast(reader, dataset.schema), metadata)
    con.unregister("er_t")
    if own:
        con.close()
    return removed


def cast(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in reader))


def swap(path: Path, data: pa.RecordBatchReader, metadata) -> None:
    """Write `data` as a new table beside `path`, then put it in its place and delete the old one. A
    crash in between leaves a sibling that recover() completes."""
    new, old = path.with_name(path.name + NEW), path.with_name(path.name + OLD)
    shutil.rmtree(new, ignore_errors=True)
    lake.write(
        new,
        data,
        mode="error",
        partition_by=list(metadata.partition_columns) or None,
        configuration=dict(metadata.configuration) or None,
    )
    os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old)


def recover(lake_dir: Path) -> None:
    """Finish what a crashed erasure left: a table moved aside with its fresh copy complete goes back
    into place; an unfinished fresh copy is dropped."""
    for old in sorted(lake_dir.rglob(f"*{OLD}")):
        path = old.with_name(old.name.removesuffix(OLD))
        new = path.with_name(path.name + NEW)
        if not path.exists():
            os.replace(new if lake.exists(new) else old, path)
        shutil.rmtree(old, ignore_errors=True)
    for new in sorted(lake_dir.rglob(f"*{NEW}")):
        shutil.rmtree(new)


def delta_tables(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p.parent for p in folder.rglob("_delta_log") if not p.parent.name.endswith((NEW, OLD)))
