"""The OMOP CDM v5.4 specification as code: a typed model of tables and fields and the project's DuckDB
DDL. The OHDSI Data Quality Dashboard (DQD) check catalogue is in ``dqd_spec``.

The spec is a third-party CSV packaged under ``rwe_assets/lib/spec/`` (Apache 2.0, see the README and
LICENSE there) and read with ``spec_csv``; nothing is read from outside the package.

Type mapping (spec datatype, case-insensitive -> DuckDB):

    integer    -> INTEGER     32-bit, as in the official DDLs
    bigint     -> BIGINT      not in the v5.4 CSV; DQD and extension CSVs use it
    float      -> DOUBLE      the spec's float is SQL Server's float(53), 8 bytes; DuckDB FLOAT is 4 bytes
    date       -> DATE
    datetime   -> TIMESTAMP   no time zone, as in the official PostgreSQL DDL
    varchar(n), varchar(MAX) -> VARCHAR   DuckDB does not enforce lengths; n is kept in CdmField.max_length

Keys: required fields are NOT NULL. PRIMARY KEY constraints are off by default: DuckDB enforces them with
an ART index maintained on every insert, which slows bulk loads and holds the index in memory; the DQD
isPrimaryKey / isForeignKey checks verify keys instead. ``primary_keys=True`` adds them. Foreign keys are
never declared (DuckDB would then force load order and block deletes/replaces of referenced tables).

Extension point: ``load_cdm_spec(extra_field_csvs=...)`` adds tables (e.g. the G-CDM genomic extension)
from field-level CSVs in the official format, with optional table-level CSVs for their descriptions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib.spec_csv import SPEC_DIR, located, read_spec_csv, spec_value
from rwe_assets.lib.sql_text import quote_identifier

CDM_SCHEMA = "cdm"
"""The DuckDB schema the project creates every CDM table in (clinical, vocabulary and results tables)."""

_CDM_DIR = SPEC_DIR / "omop_cdm_5.4"
FIELD_LEVEL_CSV = _CDM_DIR / "OMOP_CDMv5.4_Field_Level.csv"  # also read for the UI's column descriptions

_SIMPLE_TYPES = {
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}
_VARCHAR = re.compile(r"varchar\((\d+|max)\)")
_FIELD_COLUMNS = ("cdmTableName", "cdmFieldName", "isRequired", "cdmDatatype", "isPrimaryKey")


# --- type mapping -------------------------------------------------------------------------------


def duckdb_type(cdm_datatype: str) -> str:
    """The DuckDB type for a spec datatype such as ``integer``, ``Integer`` or ``varchar(MAX)``."""
    key = cdm_datatype.strip().lower()
    if key in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[key]
    if _VARCHAR.fullmatch(key):
        return "VARCHAR"
    raise ConfigError(
        f"CDM datatype: expected one of {', '.join(_SIMPLE_TYPES)} or varchar(n|MAX), found {cdm_datatype!r}"
    )


# --- the CDM model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CdmField:
    """One field of a CDM table, as the spec defines it."""

    table: str
    name: str
    ordinal: int  # 1-based position in its table, in official order
    cdm_datatype: str  # as written in the spec, e.g. "varchar(50)", "Integer"
    duckdb_type: str
    is_required: bool
    is_primary_key: bool
    fk_table: str | None = None
    fk_field: str | None = None
    fk_domain: str | None = None  # e.g. "Gender", "Type Concept"
    fk_class: str | None = None  # e.g. "Ingredient"

    @property
    def max_length(self) -> int | None:
        """The spec's varchar length, None for other types and varchar(MAX)."""
        match = _VARCHAR.fullmatch(self.cdm_datatype.strip().lower())
        return int(match.group(1)) if match and match.group(1).isdigit() else None


@dataclass(frozen=True)
class CdmTable:
    """One CDM table with its fields in official order."""

    name: str
    schema: str  # the spec's group: "cdm", "vocab" or "results" (the project puts all in CDM_SCHEMA)
    description: str
    fields: tuple[CdmField, ...]

    @property
    def is_vocabulary(self) -> bool:
        return self.schema == "vocab"

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.is_primary_key)

    def column(self, name: str) -> CdmField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"CDM table {self.name}: no field {name!r}")


@dataclass(frozen=True)
class CdmSpec:
    """All tables of the spec, in official order."""

    tables: tuple[CdmTable, ...]

    @functools.cached_property
    def table_names(self) -> tuple[str, ...]:  # asked per check and table by the DQD runner
        return tuple(t.name for t in self.tables)

    def table(self, name: str) -> CdmTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"CDM spec: no table {name!r}")


@functools.cache
def cdm_spec() -> CdmSpec:
    """The official OMOP CDM v5.4, loaded once from the packaged CSVs."""
    return load_cdm_spec()


def load_cdm_spec(extra_field_csvs: Sequence[Path] = (), extra_table_csvs: Sequence[Path] = ()) -> CdmSpec:
    """The official spec plus extension tables (e.g. G-CDM) from CSVs in the official field-level and,
    optionally, table-level format. Extensions may add tables, not change existing ones."""
    tables = _tables_from(
        read_spec_csv(FIELD_LEVEL_CSV, _FIELD_COLUMNS),
        read_spec_csv(_CDM_DIR / "OMOP_CDMv5.4_Table_Level.csv"),
        FIELD_LEVEL_CSV.name,
    )
    extra_table_rows = [row for path in extra_table_csvs for row in read_spec_csv(Path(path))]
    for path in extra_field_csvs:
        added = _tables_from(read_spec_csv(Path(path), _FIELD_COLUMNS), extra_table_rows, str(path))
        if clash := sorted(added.keys() & tables.keys()):
            raise ConfigError(f"{path}: expected only new tables, found {', '.join(clash)} already defined")
        tables.update(added)
    return CdmSpec(tuple(tables.values()))


def _tables_from(
    field_rows: list[dict[str, str]], table_rows: list[dict[str, str]], source: str
) -> dict[str, CdmTable]:
    info = {row["cdmTableName"].lower(): row for row in table_rows}
    fields: dict[str, list[CdmField]] = {}
    for number, row in enumerate(field_rows, start=1):
        table_fields = fields.setdefault(row["cdmTableName"].lower(), [])
        new = _field_from(row, len(table_fields) + 1, f"{source} row {number}")
        if any(f.name == new.name for f in table_fields):
            raise ConfigError(f"{source} row {number}: expected unique field names, found {new.name} twice")
        table_fields.append(new)
    return {name: _table_from(name, info.get(name, {}), fs) for name, fs in fields.items()}


def _table_from(name: str, info: Mapping[str, str], fields: list[CdmField]) -> CdmTable:
    schema = (spec_value(info, "schema") or CDM_SCHEMA).lower()
    return CdmTable(name, schema, spec_value(info, "tableDescription") or "", tuple(fields))


def _field_from(row: Mapping[str, str], ordinal: int, where: str) -> CdmField:
    datatype = row["cdmDatatype"]
    fk_table, fk_field = spec_value(row, "fkTableName"), spec_value(row, "fkFieldName")
    return CdmField(
        table=row["cdmTableName"].lower(),
        name=row["cdmFieldName"].strip('"').lower(),  # the spec quotes reserved words: "offset"
        ordinal=ordinal,
        cdm_datatype=datatype,
        duckdb_type=located(where, duckdb_type, datatype),
        is_required=_yes_no(row, "isRequired", where),
        is_primary_key=_yes_no(row, "isPrimaryKey", where),
        fk_table=fk_table.lower() if fk_table else None,
        fk_field=fk_field.lower() if fk_field else None,
        fk_domain=spec_value(row, "fkDomain"),
        fk_class=spec_value(row, "fkClass"),
    )


# --- DDL ----------------------------------------------------------------------------------------


def create_table_sql(table: CdmTable | str, schema: str = CDM_SCHEMA, *, primary_keys: bool = False) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table; a name is looked up in the official spec."""
    table = cdm_spec().table(table) if isinstance(table, str) else table
    columns = [
        f"    {quote_identifier(f.name)} {f.duckdb_type}{' NOT NULL' if f.is_required else ''}"
        for f in table.fields
    ]
    if primary_keys and table.primary_key:
        columns.append(f"    PRIMARY KEY ({', '.join(map(quote_identifier, table.primary_key))})")
    body = ",\n".join(columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_identifier(schema)}.{quote_identifier(table.name)} (\n{body}\n)"
    )


def cdm_ddl(
    schema: str = CDM_SCHEMA,
    tables: Iterable[str] | None = None,
    *,
    spec: CdmSpec | None = None,
    primary_keys: bool = False,
) -> list[str]:
    """``CREATE SCHEMA IF NOT EXISTS`` then one ``CREATE TABLE IF NOT EXISTS`` per table (all by default)."""
    spec = spec or cdm_spec()
    chosen = spec.tables if tables is None else [spec.table(name) for name in tables]
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}",
        *(create_table_sql(t, schema, primary_keys=primary_keys) for t in chosen),
    ]


def expected_columns(table: CdmTable | str) -> list[tuple[str, str]]:
    """(column, DuckDB type) in spec order, as DuckDB's information_schema.columns reports them."""
    table = cdm_spec().table(table) if isinstance(table, str) else table
    return [(f.name, f.duckdb_type) for f in table.fields]


def _yes_no(row: Mapping[str, str], column: str, where: str) -> bool:
    value = row.get(column, "").lower()
    if value not in ("yes", "no"):
        raise ConfigError(f"{where} {column}: expected Yes or No, found {row.get(column)!r}")
    return value == "yes"
