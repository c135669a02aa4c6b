"""The database a DQD run checks: which tables and columns its CDM and vocabulary schemas hold, and
their row counts, so a check that cannot apply is known before any query runs (``NotApplicable``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.sql_text import quote_identifier


class NotApplicable(Exception):
    """Raised while planning a check that cannot apply; the message is the reason."""


@dataclass(frozen=True)
class Schema:
    catalog: str  # lower case
    name: str  # lower case
    sql: str  # quoted and qualified: "db"."cdm"


@dataclass
class Database:
    con: duckdb.DuckDBPyConnection
    cdm: Schema
    vocab: Schema
    today: dt.date
    columns: dict[tuple[str, str], dict[str, str]]  # (catalog, schema) -> {"table.column": data_type}
    tables: dict[tuple[str, str], set[str]]
    row_counts: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def open(cls, con: duckdb.DuckDBPyConnection, schema: str, vocab_schema: str, today: dt.date) -> Database:
        current = scalar(con, "SELECT current_database()")
        cdm, vocab = _schema(schema, current), _schema(vocab_schema, current)
        columns: dict[tuple[str, str], dict[str, str]] = {}
        tables: dict[tuple[str, str], set[str]] = {}
        for s in {cdm, vocab}:
            key = (s.catalog, s.name)
            tables[key] = {
                name
                for (name,) in con.execute(
                    "SELECT lower(table_name) FROM information_schema.tables "
                    "WHERE lower(table_catalog) = $c AND lower(table_schema) = $s",
                    {"c": s.catalog, "s": s.name},
                ).fetchall()
            }
            columns[key] = {
                f"{t}.{c}": data_type.upper()
                for t, c, data_type in con.execute(
                    "SELECT lower(table_name), lower(column_name), data_type FROM information_schema.columns "
                    "WHERE lower(table_catalog) = $c AND lower(table_schema) = $s",
                    {"c": s.catalog, "s": s.name},
                ).fetchall()
            }
        return cls(con, cdm, vocab, today, columns, tables)

    def schema_of(self, table: str) -> Schema:
        spec = cdm_spec()
        is_vocab = table in spec.table_names and spec.table(table).is_vocabulary
        return self.vocab if is_vocab else self.cdm

    def table(self, name: str) -> str:
        return f"{self.schema_of(name).sql}.{quote_identifier(name)}"

    def require(self, table: str, *columns: str) -> None:
        """Raise NotApplicable unless the table and its columns exist."""
        s = self.schema_of(table)
        if table not in self.tables[(s.catalog, s.name)]:
            raise NotApplicable(f"table {table} does not exist in {s.catalog}.{s.name}")
        missing = [c for c in columns if f"{table}.{c}" not in self.columns[(s.catalog, s.name)]]
        if missing:
            raise NotApplicable(f"field {', '.join(f'{table}.{c}' for c in missing)} does not exist")

    def require_rows(self, table: str) -> None:
        """Raise NotApplicable when the (existing) table is empty."""
        if table not in self.row_counts:
            self.row_counts[table] = int(scalar(self.con, f"SELECT count(*) FROM {self.table(table)}"))
        if self.row_counts[table] == 0:
            raise NotApplicable(f"table {table} is empty")

    def type_of(self, table: str, column: str) -> str:
        s = self.schema_of(table)
        return self.columns[(s.catalog, s.name)][f"{table}.{column}"]


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None  # an aggregate or a function call: always one row
    return row[0]


def _schema(qualified: str, current_catalog: str) -> Schema:
    parts = _parts(qualified)
    if len(parts) == 1:
        return Schema(current_catalog.lower(), parts[0].lower(), quote_qualified(qualified))
    if len(parts) == 2:
        return Schema(parts[0].lower(), parts[1].lower(), quote_qualified(qualified))
    raise ValueError(f"schema: expected 'schema' or 'database.schema', found {qualified!r}")


def _parts(qualified: str) -> list[str]:
    return [p.strip().strip('"') for p in qualified.split(".")]


def quote_qualified(qualified: str) -> str:
    return ".".join(quote_identifier(p) for p in _parts(qualified))
