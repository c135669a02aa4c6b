"""The CDM build's large intermediates, kept as compressed Parquet files instead of temporary tables.

DuckDB holds a temporary table uncompressed and spills it past its memory limit uncompressed too: at
1M persons ``mapped_event`` (every staged event, 150M rows) filled the 46 GB of free disk. The same rows
written as ZSTD Parquet took 6 GiB in 244 s, with at most 2.1 GB of spill for the query itself. So
the build runs a statement ``CREATE OR REPLACE TEMP TABLE <name> AS <query>`` of a name in ``STORED``
(the intermediates that grow with events, visits or cost lines) as ``COPY (<query>) TO
<dir>/<name>.parquet`` and a temporary view of that file, cast back to the query's own types (Parquet
has no HUGEINT or ENUM); the build moves the tables its code makes (``keep``: the id maps' tables, the
visit rollup) there too once they are complete. The SQL files stay as written, so the Spark engine and the lineage read them
unchanged, and a connection without a directory (a test of one SQL file) runs them as temporary tables.

A file of ``PARTS`` runs a part at a time: each of its statements keeps only the rows of the part,
``hash(<key>) % $parts = $part``, and the whole file runs once per part, each stored intermediate a
file per part, its view reading the running part's file, then every part's (``run``). At 1M persons
cost.sql (51M cost lines, the events they pay for joined to 150M event ids) ran out of memory at the
default 3 GB in one piece however its joins were written; a fifth of its lines at a time fit. Without a
directory the file runs once, with the one part that holds every row (lib/cdm/sql.py ``PARAMETERS``).

The directory is the connection's DuckDB variable ``cdm_intermediates`` (set by lib/cdm/build.py:
warehouse/build.duckdb.intermediates). Its files live as long as the views that read them: until the
build ends, or, after a failed step, until the build resuming it (lib/cdm/resume.py saves the views by
their SQL) ends or another build starts over (``clear``).
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb

from rwe_assets.lib.cdm.tables import EVENT_TABLES
from rwe_assets.lib.publish import BUILD
from rwe_assets.lib.sql_loader import execute as execute_bound
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

_GROWING_IDS = ("visit_occurrence", "visit_detail", *EVENT_TABLES, "note", "payer_plan_period", "cost")
STORED = frozenset(
    {"mapped_event", "visit_input", "visit_link", "cost_target", "cost_input", "enrollment_month"}
    | {"rollup_visit", "rollup_visit_map"}  # the visit rollup's outputs (lib/cdm/visits.py)
    | {f"ids_{table}" for table in _GROWING_IDS}  # the id maps' tables (lib/id_map.py)
)
PARTS = {"cost": ("stg_cost", 10_000_000)}
"""SQL file -> (the table whose rows decide its number of parts, rows per part)."""
DIRECTORY = f"{BUILD}.intermediates"
_VARIABLE = "cdm_intermediates"
_CREATE_TEMP_TABLE = re.compile(
    r"\A(?:\s+|--[^\n]*\n|/\*.*?\*/)*CREATE\s+OR\s+REPLACE\s+TEMP\s+TABLE\s+(\w+)\s+AS\s",
    re.IGNORECASE | re.DOTALL,
)


def directory(warehouse_dir: Path) -> Path:
    return warehouse_dir / DIRECTORY


def use(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """Store `con`'s intermediates under warehouse_dir (created when the first is written)."""
    con.execute(f"SET VARIABLE {_VARIABLE} = {quote_literal(str(directory(warehouse_dir)))}")


def clear(warehouse_dir: Path) -> None:
    """The intermediates' files, with every view that reads them gone or about to go."""
    shutil.rmtree(directory(warehouse_dir), ignore_errors=True)


def run(
    con: duckdb.DuckDBPyConnection, name: str, statements: list[str], values: Mapping[str, object]
) -> None:
    """Run the statements of lib/sql/cdm/<name>.sql, once per part when the file is in ``PARTS``."""
    parts = _parts(con, name)
    for part in range(parts):
        selected = {**values, "part": part, "parts": parts}
        stored = []
        for statement in statements:
            table = execute(con, statement, selected, part if parts > 1 else None)
            stored += [table] if table else []
    if parts > 1:  # every part stored the same intermediates: each is read as one from here on
        folder = _folder(con)
        for table in stored:
            _view(con, table, [_file(folder, table, part) for part in range(parts)])


def execute(
    con: duckdb.DuckDBPyConnection, statement: str, values: Mapping[str, object], part: int | None = None
) -> str | None:
    """Run one statement of the CDM SQL, binding its ``$parameters`` from `values`: an intermediate of
    ``STORED`` goes to a Parquet file (one per `part`) and a view when `con` has a directory for them.
    Returns the name of the intermediate stored, if any."""
    match = _CREATE_TEMP_TABLE.match(statement)
    name = match.group(1).lower() if match else None
    folder = _folder(con) if name in STORED else None
    if folder is None:  # not a CREATE of a stored name, or no directory
        execute_bound(con, statement, values)
        return None
    _store(con, name, statement[match.end() :], _file(folder, name, part), values)
    return name


def keep(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Temporary tables made by code rather than a CDM SQL file (an id map's table, the visit rollup's
    outputs), each moved to a file when it is in ``STORED`` and `con` has a directory."""
    folder = _folder(con)
    for name in names:
        if folder is not None and name in STORED:
            _store(con, name, f"SELECT * FROM temp.main.{quote_identifier(name)}", _file(folder, name), {})


def _folder(con) -> Path | None:
    (folder,) = con.execute(f"SELECT getvariable('{_VARIABLE}')").fetchone()
    return None if folder is None else Path(folder)


def _parts(con, name: str) -> int:
    if name not in PARTS or _folder(con) is None:
        return 1
    table, rows_per_part = PARTS[name]
    (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return max(1, math.ceil(rows / rows_per_part))


def _file(folder: Path, name: str, part: int | None = None) -> Path:
    return folder / (f"{name}.parquet" if part is None else f"{name}.part{part}.parquet")


def _store(con, name: str, query: str, file: Path, values: Mapping[str, object]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    types = [row[:2] for row in execute_bound(con, f"DESCRIBE {query}", values).fetchall()]
    execute_bound(
        con, f"COPY ({query}) TO {quote_literal(str(file))} (FORMAT parquet, COMPRESSION zstd)", values
    )
    _view(con, name, [file], types)


def _view(con, name: str, files: list[Path], types: list[tuple[str, str]] | None = None) -> None:
    """The temporary view `name` of `files`, cast to `types` (default: the current view's)."""
    if types is None:
        types = [
            row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {quote_identifier(name)}").fetchall()
        ]
    path = "[" + ", ".join(quote_literal(str(file)) for file in files) + "]"
    written = dict(row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall())
    columns = ", ".join(
        f"CAST({quote_identifier(column)} AS {kind}) AS {quote_identifier(column)}"
        if written[column] != kind
        else quote_identifier(column)
        for column, kind in types
    )
    # a temporary table of the name gives way to the view (a view of it is replaced by CREATE OR REPLACE)
    if con.execute("SELECT 1 FROM duckdb_tables() WHERE temporary AND table_name = ?", [name]).fetchone():
        con.execute(f"DROP TABLE temp.main.{quote_identifier(name)}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {quote_identifier(name)} AS SELECT {columns} FROM read_parquet({path})"
    )
