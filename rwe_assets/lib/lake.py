"""Delta tables of the lake: paths, idempotent per-file writes, and reads into DuckDB.

Reads go through deltalake (DuckDB's delta extension cannot be installed offline), never by globbing
parquet files: files superseded by a delete are still on disk. Either as a pyarrow dataset, or, for
large scans, as DuckDB's own Parquet reader over exactly the files of the table's current version.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from rwe_assets.lib.sql_text import quote_identifier, quote_literal

FILE_SHA256 = "_file_sha256"


def table_path(lake_dir: Path, *parts: str) -> Path:
    return Path(lake_dir).joinpath(*parts)


def exists(path: Path) -> bool:
    return DeltaTable.is_deltatable(str(path))


def open_table(path: Path) -> DeltaTable | None:
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None


def read_table(path: Path, columns: list[str] | None = None, filter_expr=None) -> pa.Table | None:
    """The live rows of a Delta table, or None when the table does not exist yet."""
    table = open_table(path)
    if table is None:
        return None
    return table.to_pyarrow_dataset().to_table(columns=columns, filter=filter_expr)


def replace_file_rows(path: Path, data: pa.Table | pa.RecordBatchReader, file_sha256: str) -> None:
    """Write the rows that came from one landed file, replacing any rows of the same file.

    One Delta transaction deletes what an interrupted earlier attempt may have left and appends the
    new rows, so re-running an ingest never duplicates a file, and a failure while `data` streams
    commits nothing.
    """
    if not all(c in "0123456789abcdef" for c in file_sha256) or len(file_sha256) != 64:
        raise ValueError(f"expected a sha256 hex digest, found {len(file_sha256)} characters")
    write_deltalake(
        str(path),
        data,
        mode="overwrite",
        predicate=f"{FILE_SHA256} = '{file_sha256}'",
        schema_mode="merge",
    )


def append(path: Path, data: pa.Table) -> None:
    write_deltalake(str(path), data, mode="append", schema_mode="merge")


def register_view(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> bool:
    """Expose a Delta table to DuckDB as view `name` (projection and filters push down).

    Returns False, and registers nothing, when the table does not exist yet.
    """
    table = open_table(path)
    if table is None:
        return False
    con.register(name, table.to_pyarrow_dataset())
    return True


# Reader features a plain Parquet read of the active files honours; anything else (deletion vectors,
# column mapping, ...) needs the Delta reader.
_PLAIN_PARQUET_READER_FEATURES = {"timestampNtz"}


def register_parquet_view(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> bool:
    """Expose a Delta table to DuckDB as view `name` over the Parquet files of its current version, read
    by DuckDB's parallel Parquet reader: scans and joins over millions of rows run several times faster
    than through a registered pyarrow dataset. Columns in the Delta schema's order. Falls back to the
    pyarrow dataset (register_view) when the table has no file, partition columns, column mapping or a
    reader feature plain Parquet does not carry. Returns False when the table does not exist yet."""
    table = open_table(path)
    if table is None:
        return False
    metadata, protocol = table.metadata(), table.protocol()
    files = table.file_uris()
    plain = (
        files
        and not metadata.partition_columns
        and "delta.columnMapping.mode" not in metadata.configuration
        and set(protocol.reader_features or ()) <= _PLAIN_PARQUET_READER_FEATURES
    )
    if plain:
        columns = ", ".join(quote_identifier(field.name) for field in table.schema().fields)
        file_list = ", ".join(quote_literal(uri) for uri in files)  # a view definition takes no parameters
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS "
                f"SELECT {columns} FROM read_parquet([{file_list}], union_by_name = true)"
            )
            return True
        except duckdb.Error:
            pass  # e.g. a column of the schema that no file holds yet: the Delta reader knows it
    con.register(name, table.to_pyarrow_dataset())
    return True
