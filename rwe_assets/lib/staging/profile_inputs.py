"""What staging reads for one source: its raw tables as views (current files only, the optional
columns a layout lacks added empty) and its profile's SQL files with the columns they output."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import PROVENANCE_COLUMNS
from rwe_assets.lib.sources import SourceSpec
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.staging.model import BY_NAME, OPTIONAL_PROVENANCE


def entity_sql_files(profile_dir: Path, table_name: str) -> list[Path]:
    """The SQL files staging one raw entity each into `table_name` (a name starting with '_' is a
    shared part the others include, not an entity)."""
    return sorted(p for p in (profile_dir / table_name).glob("*.sql") if not p.stem.startswith("_"))


def select_list(
    con, table_name: str, sql: str, params: dict, sql_file: Path, catalog: str | None = None
) -> str:
    """The table's columns as the profile's SQL outputs them (an optional column it leaves out is NULL;
    `_version_at`, the source's own version instant, is read as an instant or NULL: lib/staging/lifecycle.py),
    then the failure and whether record_key is natural (`_natural_key`, false when not output).
    `catalog`: the connection's catalog_key, to reuse the output columns of an earlier identical bind."""
    table = BY_NAME[table_name]
    output = _output_columns(con, sql, params, catalog)
    optional = table.optional | OPTIONAL_PROVENANCE
    missing = [n for n in table.column_names if n.lower() not in output and n not in optional]
    if missing:
        raise ConfigError(
            f"{sql_file}: expected the columns of staging.{table_name}, found none for {missing}"
        )
    columns = ", ".join(_output_column(n, output) for n in table.column_names)
    natural = "coalesce(_natural_key, false)" if "_natural_key" in output else "false"
    return f"{columns}, _failure.reason, _failure.field, {natural}"


# The output columns of a profile SQL, by (catalog_key, SQL text). Binding a query (a LIMIT 0 run) cost
# about as much as running it on a small build, ~20% of its statements' time, and the test suite runs
# the same SQL over the same raw layouts hundreds of times in one process; a 1M build binds each once.
_OUTPUTS: dict[tuple[str, str], frozenset[str]] = {}
_OUTPUTS_MAX = 2048  # SQL texts of a few kB each: a few MB at most

# What a query's output columns can depend on besides its text, the macros (catalog_key) and the tables
# the code creates with fixed columns: the raw views' columns and types, of every source staged on the
# connection so far (a SQL reads its own source's; `SELECT *` and COLUMNS(...) over them change with the
# file layout). The SQL's parameters are values, never names.
_RAW_COLUMNS = (
    "SELECT database_name, schema_name, table_name, column_index, column_name, data_type "
    "FROM duckdb_columns() WHERE starts_with(table_name, 'raw_')"
)


def catalog_key(con, macros: str) -> str:
    """A digest of what, besides a SQL text, decides which columns it outputs on `con` (_RAW_COLUMNS) with
    `macros` (the profile's macro text) created; valid until a raw view or macro changes."""
    digest = hashlib.sha256(macros.encode())
    digest.update(repr(sorted(con.execute(_RAW_COLUMNS).fetchall())).encode())
    return digest.hexdigest()


def _output_columns(con, sql: str, params: dict, catalog: str | None) -> frozenset[str]:
    key = (catalog, sql)
    if catalog is not None and key in _OUTPUTS:
        return _OUTPUTS[key]
    output = frozenset(
        c[0].lower() for c in con.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description
    )
    if catalog is not None:
        if len(_OUTPUTS) >= _OUTPUTS_MAX:
            _OUTPUTS.clear()
        _OUTPUTS[key] = output
    return output


def _output_column(name: str, output: frozenset[str]) -> str:
    if name.lower() not in output:
        return f'NULL AS "{name}"'
    if name == "_version_at":  # metadata, not a fact: a text that is no instant orders as unstated
        return f'TRY_CAST("{name}" AS TIMESTAMPTZ) AS "{name}"'
    return f'"{name}"'


def optional_raw_columns(profile_dir: Path) -> dict[str, tuple[str, ...]]:
    path = profile_dir / "_optional_columns.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {e: tuple(r["column"] for r in rows if r["entity"] == e) for e in {r["entity"] for r in rows}}


def add_missing_columns(con, view: str, columns: tuple[str, ...]) -> None:
    """Re-create `view` with each of `columns` it lacks added as '' (see a profile's _optional_columns.csv)."""
    present = {c[0].lower() for c in con.execute(f"SELECT * FROM {view} LIMIT 0").description}
    added = [c for c in columns if c.lower() not in present]
    if added:
        extra = ", ".join(f"'' AS \"{c}\"" for c in added)
        con.execute(f"DROP VIEW IF EXISTS {view}_layout")
        con.execute(f"ALTER VIEW {view} RENAME TO {view}_layout")
        con.execute(f"CREATE VIEW {view} AS SELECT *, {extra} FROM {view}_layout")


def register_raw(con, lake_dir: Path, source: SourceSpec, entity: str, shas: list[str]) -> None:
    """Expose raw/<source>/<entity> (current files only) as view raw_<entity>; an entity that never
    landed is an empty table with its declared columns."""
    view = f"raw_{entity}"
    # DuckDB's parallel Parquet reader over the table's current Delta files
    if not lake.register_parquet_view(
        con, f"{view}_all", lake.table_path(lake_dir, "raw", source.name, entity)
    ):
        declared = ["resource_type", "resource_id", "resource_json"] if source.format == "ndjson" else []
        columns = [*declared, *source.entity(entity).required_columns, *PROVENANCE_COLUMNS]
        typed = ", ".join(f'CAST(NULL AS {_RAW_TYPES.get(c, "VARCHAR")}) AS "{c}"' for c in columns)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {typed} WHERE false")
        return
    current = ", ".join(quote_literal(sha) for sha in shas) or "NULL"  # NULL: no current file, no row
    con.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {view}_all WHERE _file_sha256 IN ({current})"
    )


_RAW_TYPES = {"_line_number": "BIGINT", "_ingested_at": "TIMESTAMPTZ"}
