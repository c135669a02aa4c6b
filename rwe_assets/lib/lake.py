"""Delta tables of the lake: paths, idempotent per-file writes, and reads into DuckDB.

Reads go through deltalake (DuckDB's delta extension cannot be installed offline), never by globbing
parquet files: files superseded by a delete are still on disk. Either as a pyarrow dataset, or, for
large scans, as DuckDB's own Parquet reader over exactly the files of the table's current version.

The lake is a local folder (a Path) or a prefix on S3-compatible object storage (a LakeUri, from
RWE_LAKE_URI). Every Delta read and write of the code base goes through this module, which passes the
object store's settings (the AWS_* variables of the environment) to deltalake as storage options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

FILE_SHA256 = "_file_sha256"
DELTA_LOG = "_delta_log"
REMOTE_SCHEMES = ("s3://", "s3a://")

# The environment variables handed to deltalake for an object-store lake (delta-rs reads the same
# names): credentials, region, endpoint (a local S3 server), and the commit options for stores without
# conditional writes (docs/operations.md, "The lake on object storage"; delta-rs 1.x dropped the
# DynamoDB lock of its 0.x releases).
STORAGE_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_S3_ALLOW_UNSAFE_RENAME",
    "AWS_CONDITIONAL_PUT",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
)


@dataclass(frozen=True)
class LakeUri:
    """A folder of a lake on object storage, `s3://bucket/prefix/...`: the part of Path's interface the
    code base uses on lake paths (/, joinpath, name, parent, with_name, relative_to), so code written
    for a local lake_dir takes either. `state_dir` is the local data directory that holds what
    object storage cannot (lock files, rwe.env); children inherit it. It has no __fspath__ on purpose:
    a local file operation on it fails instead of creating a folder named `s3:`."""

    uri: str
    state_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.uri.startswith(REMOTE_SCHEMES) or not self.uri.split("://", 1)[1].strip("/"):
            raise ValueError(f"expected s3://bucket[/prefix], found {self.uri!r}")
        object.__setattr__(self, "uri", self.uri.rstrip("/"))

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, part: str) -> LakeUri:
        return self.joinpath(part)

    def joinpath(self, *parts: str) -> LakeUri:
        tail = [str(p).strip("/") for p in parts if str(p).strip("/")]
        return LakeUri("/".join([self.uri, *tail]), self.state_dir)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> LakeUri:
        head = self.uri.rsplit("/", 1)[0]
        return LakeUri(head, self.state_dir) if "/" in self.key else self

    @property
    def key(self) -> str:
        """bucket/prefix: the path pyarrow's S3FileSystem takes."""
        return self.uri.split("://", 1)[1]

    def with_name(self, name: str) -> LakeUri:
        return self.parent / name

    def relative_to(self, other: LakeUri) -> PurePosixPath:
        return PurePosixPath(self.key).relative_to(other.key)

    def as_posix(self) -> str:
        return self.uri


LakePath = Path | LakeUri


def location(value: str | os.PathLike, state_dir: Path | None = None) -> LakePath:
    """A lake location from a setting: an s3:// URI becomes a LakeUri, anything else a local Path."""
    text = str(value)
    if text.startswith(REMOTE_SCHEMES):
        return LakeUri(text, state_dir)
    return Path(text).resolve()


def is_remote(path) -> bool:
    return isinstance(path, LakeUri)


def require_local(lake_dir: LakePath, command: str) -> Path:
    """Stop `command` (one that renames table folders, which object storage cannot do) on a lake on
    object storage, before it changes anything."""
    if is_remote(lake_dir):
        raise ConfigError(
            f"{command} needs a local lake; {lake_dir} is on object storage (not supported yet)"
        )
    return Path(lake_dir)


def state_dir(lake_dir: LakePath) -> Path:
    """The local data directory of a lake: a local lake's parent folder, or a remote lake's state_dir."""
    if not is_remote(lake_dir):
        return Path(lake_dir).parent
    if lake_dir.state_dir is None:
        raise ValueError(f"{lake_dir}: an object-store lake needs a local state directory")
    return lake_dir.state_dir


def work_dir(lake_dir: LakePath, *parts: str) -> Path:
    """A local scratch folder for a build step (DuckDB spill, staged files): <lake>/_work/... for a
    local lake, <state_dir>/lake_work/... for one on object storage (scratch never goes to the bucket)."""
    if is_remote(lake_dir):
        return state_dir(lake_dir).joinpath("lake_work", *parts)
    return Path(lake_dir).joinpath("_work", *parts)


def storage_options(path: LakePath) -> dict[str, str] | None:
    """deltalake's storage options for `path`: None for a local lake (deltalake needs none)."""
    if not is_remote(path):
        return None
    return {name: os.environ[name] for name in STORAGE_VARIABLES if os.environ.get(name)}


def table_path(lake_dir: LakePath, *parts: str) -> LakePath:
    if is_remote(lake_dir):
        return lake_dir.joinpath(*parts)
    return Path(lake_dir).joinpath(*parts)


def exists(path: LakePath) -> bool:
    if is_remote(path):
        # is_deltatable holds the GIL while it waits on the network; opening the table does not
        return open_table(path) is not None
    return DeltaTable.is_deltatable(str(path))


def open_table(path: LakePath) -> DeltaTable | None:
    try:
        return DeltaTable(str(path), storage_options=storage_options(path))
    except TableNotFoundError:
        return None


def read_table(path: LakePath, columns: list[str] | None = None, filter_expr=None) -> pa.Table | None:
    """The live rows of a Delta table, or None when the table does not exist yet."""
    table = open_table(path)
    if table is None:
        return None
    return table.to_pyarrow_dataset().to_table(columns=columns, filter=filter_expr)


# Parquet of every lake write: ZSTD level 1 took 43% less disk than delta-rs's default Snappy for the
# same CPU on a 2,000-person lake (bench/README.md, pipeline.py); the lake is most of a 1M run's disk.
WRITER_PROPERTIES = WriterProperties(compression="ZSTD", compression_level=1)


def write(path: LakePath, data, **options) -> None:
    """write_deltalake with the lake's storage options and Parquet settings: the one Delta writer of
    the code base."""
    options.setdefault("writer_properties", WRITER_PROPERTIES)
    write_deltalake(str(path), data, storage_options=storage_options(path), **options)


def replace_file_rows(path: LakePath, data: pa.Table | pa.RecordBatchReader, file_sha256: str) -> None:
    """Write the rows that came from one landed file, replacing any rows of the same file.

    One Delta transaction deletes what an interrupted earlier attempt may have left and appends the
    new rows, so re-running an ingest never duplicates a file, and a failure while `data` streams
    commits nothing.
    """
    if not all(c in "0123456789abcdef" for c in file_sha256) or len(file_sha256) != 64:
        raise ValueError(f"expected a sha256 hex digest, found {len(file_sha256)} characters")
    write(
        path,
        data,
        mode="overwrite",
        predicate=f"{FILE_SHA256} = '{file_sha256}'",
        schema_mode="merge",
    )


def append(path: LakePath, data: pa.Table) -> None:
    write(path, data, mode="append", schema_mode="merge")


def read_parquet_file(path: LakePath, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file of the lake (a file a Delta log names), local or on object storage."""
    if is_remote(path):
        return pq.read_table(path.key, columns=columns, filesystem=s3_filesystem())
    return pq.read_table(path, columns=columns)


def read_text(path: LakePath) -> str | None:
    """A small text file kept in the lake (e.g. linkage/model.json); None when there is none."""
    if not is_remote(path):
        return Path(path).read_text() if Path(path).exists() else None
    try:
        with s3_filesystem().open_input_stream(path.key) as stream:
            return stream.read().decode()
    except FileNotFoundError:
        return None


def write_text(path: LakePath, text: str) -> None:
    """Replace a small text file of the lake at once: a local temp file renamed over it, or one PUT
    (an object store never shows half an object)."""
    if is_remote(path):
        with s3_filesystem().open_output_stream(path.key) as stream:
            stream.write(text.encode())
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tables_under(folder: LakePath) -> list[LakePath]:
    """Every Delta table under `folder` (a folder holding _delta_log), in path order."""
    if is_remote(folder):
        from pyarrow import fs

        selector = fs.FileSelector(folder.key, recursive=True, allow_not_found=True)
        roots = {
            info.path.split(f"/{DELTA_LOG}/", 1)[0]
            for info in s3_filesystem().get_file_info(selector)
            if f"/{DELTA_LOG}/" in info.path
        }
        return [folder.joinpath(str(PurePosixPath(root).relative_to(folder.key))) for root in sorted(roots)]
    found = []
    for current, dirs, _ in os.walk(folder):
        if DELTA_LOG in dirs:
            found.append(Path(current))
            dirs.clear()  # a table's folder holds no other table
        dirs.sort()
    return sorted(found)


def log_file_names(path: LakePath) -> set[str]:
    """Commit and checkpoint files of a table's log (_last_checkpoint is rewritten, not removed)."""
    if is_remote(path):
        from pyarrow import fs

        selector = fs.FileSelector(f"{path.key}/{DELTA_LOG}", allow_not_found=True)
        names = {info.base_name for info in s3_filesystem().get_file_info(selector)}
    else:
        names = {entry.name for entry in os.scandir(Path(path) / DELTA_LOG)}
    return {name for name in names if name.startswith("0")}


def s3_filesystem():
    """pyarrow's S3 filesystem over the same settings deltalake gets (AWS_* variables)."""
    from pyarrow import fs

    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    return fs.S3FileSystem(
        access_key=env.get("AWS_ACCESS_KEY_ID"),
        secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        session_token=env.get("AWS_SESSION_TOKEN"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        endpoint_override=endpoint,
        scheme="http" if endpoint and endpoint.startswith("http://") else "https",
        force_virtual_addressing=env.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "").lower() == "true",
    )


def register_view(con: duckdb.DuckDBPyConnection, name: str, path: LakePath) -> bool:
    """Expose a Delta table to DuckDB as view `name` (projection and filters push down).

    Returns False, and registers nothing, when the table does not exist yet. A local table is read by
    DuckDB's Parquet reader (register_parquet_view): files delta-rs's merge wrote hold string_view
    columns (incremental staging merges staging tables), which a pyarrow dataset reads as such, and
    pyarrow has no kernel comparing them with the string constants of the filters DuckDB pushes down.
    """
    if not is_remote(path):
        return register_parquet_view(con, name, path)
    table = open_table(path)
    if table is None:
        return False
    _register(con, name, table.to_pyarrow_dataset())
    return True


def _register(con: duckdb.DuckDBPyConnection, name: str, data) -> None:
    """con.register, replacing a view of that name (register_parquet_view may have made one: DuckDB
    refuses to register over a view, while CREATE OR REPLACE replaces a registered object)."""
    con.execute(f"DROP VIEW IF EXISTS {name}")
    con.register(name, data)


# Reader features a plain Parquet read of the active files honours; anything else (deletion vectors,
# column mapping, ...) needs the Delta reader.
_PLAIN_PARQUET_READER_FEATURES = {"timestampNtz"}


def register_parquet_view(con: duckdb.DuckDBPyConnection, name: str, path: LakePath) -> bool:
    """Expose a Delta table to DuckDB as view `name` over the Parquet files of its current version, read
    by DuckDB's parallel Parquet reader: scans and joins over millions of rows run several times faster
    than through a registered pyarrow dataset. Columns in the Delta schema's order. Falls back to the
    pyarrow dataset (register_view) when the table has no file, partition columns, column mapping or a
    reader feature plain Parquet does not carry. Returns False when the table does not exist yet.
    On object storage the same file list is read as a pyarrow dataset over pyarrow's S3 filesystem
    (DuckDB's httpfs extension cannot be installed offline)."""
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
    if plain and is_remote(path):
        _register_remote_files(con, name, table, files)
        return True
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
    _register(con, name, table.to_pyarrow_dataset())
    return True


def _register_remote_files(con: duckdb.DuckDBPyConnection, name: str, table: DeltaTable, files: list[str]):
    """The table's current files as one Arrow dataset in the Delta schema (a column some file lacks
    reads as null, as in Delta)."""
    schema = pa.schema(table.schema().to_arrow())
    keys = [uri.split("://", 1)[1] for uri in files]
    _register(con, name, pads.dataset(keys, schema=schema, format="parquet", filesystem=s3_filesystem()))
