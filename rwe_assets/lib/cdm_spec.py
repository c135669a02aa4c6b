"""The OMOP CDM v5.4 specification as code: a typed model of tables and fields, the project's DuckDB
DDL, and the OHDSI Data Quality Dashboard (DQD) check catalogue that data-quality checks are built from.

Both specs are third-party CSVs packaged under ``rwe_assets/lib/spec/`` (Apache 2.0, see the README and
LICENSE there) and read with importlib.resources; nothing is read from outside the package.

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

import csv
import dataclasses
import functools
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal, TypeVar, cast

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_text import quote_identifier

CDM_SCHEMA = "cdm"
"""The DuckDB schema the project creates every CDM table in (clinical, vocabulary and results tables)."""

_SPEC_DIR = resources.files("rwe_assets.lib") / "spec"
_CDM_DIR = _SPEC_DIR / "omop_cdm_5.4"
_DQD_DIR = _SPEC_DIR / "dqd_v5.4"

_SIMPLE_TYPES = {
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}
_VARCHAR = re.compile(r"varchar\((\d+|max)\)")
_MISSING = {"", "NA"}
_FIELD_COLUMNS = ("cdmTableName", "cdmFieldName", "isRequired", "cdmDatatype", "isPrimaryKey")
_DESCRIPTION_COLUMNS = (
    "checkLevel",
    "checkName",
    "checkDescription",
    "kahnContext",
    "kahnCategory",
    "kahnSubcategory",
    "sqlFile",
    "evaluationFilter",
    "severity",
)
_T = TypeVar("_T")


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

    @property
    def table_names(self) -> tuple[str, ...]:
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
        _read_csv(_CDM_DIR / "OMOP_CDMv5.4_Field_Level.csv", _FIELD_COLUMNS),
        _read_csv(_CDM_DIR / "OMOP_CDMv5.4_Table_Level.csv"),
        "OMOP_CDMv5.4_Field_Level.csv",
    )
    extra_table_rows = [row for path in extra_table_csvs for row in _read_csv(Path(path))]
    for path in extra_field_csvs:
        added = _tables_from(_read_csv(Path(path), _FIELD_COLUMNS), extra_table_rows, str(path))
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
    schema = (_value(info, "schema") or CDM_SCHEMA).lower()
    return CdmTable(name, schema, _value(info, "tableDescription") or "", tuple(fields))


def _field_from(row: Mapping[str, str], ordinal: int, where: str) -> CdmField:
    datatype = row["cdmDatatype"]
    fk_table, fk_field = _value(row, "fkTableName"), _value(row, "fkFieldName")
    return CdmField(
        table=row["cdmTableName"].lower(),
        name=row["cdmFieldName"].strip('"').lower(),  # the spec quotes reserved words: "offset"
        ordinal=ordinal,
        cdm_datatype=datatype,
        duckdb_type=_located(where, duckdb_type, datatype),
        is_required=_yes_no(row, "isRequired", where),
        is_primary_key=_yes_no(row, "isPrimaryKey", where),
        fk_table=fk_table.lower() if fk_table else None,
        fk_field=fk_field.lower() if fk_field else None,
        fk_domain=_value(row, "fkDomain"),
        fk_class=_value(row, "fkClass"),
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


# --- DQD check catalogue ------------------------------------------------------------------------

CheckLevel = Literal["TABLE", "FIELD", "CONCEPT"]

_DQD_LEVEL_FILES: dict[CheckLevel, str] = {
    "TABLE": "OMOP_CDMv5.4_Table_Level.csv",
    "FIELD": "OMOP_CDMv5.4_Field_Level.csv",
    "CONCEPT": "OMOP_CDMv5.4_Concept_Level.csv",
}
# Columns of a level CSV that a check's SQL needs besides table, field and concept (DQD's @parameters).
_CHECK_PARAMS: dict[str, tuple[str, ...]] = {
    "cdmDatatype": ("cdmDatatype",),
    "isForeignKey": ("fkTableName", "fkFieldName"),
    "fkDomain": ("fkDomain",),
    "fkClass": ("fkClass",),
    "sourceValueCompleteness": ("standardConceptFieldName",),
    "plausibleValueLow": ("plausibleValueLow",),
    "plausibleValueHigh": ("plausibleValueHigh",),
    "plausibleTemporalAfter": ("plausibleTemporalAfterTableName", "plausibleTemporalAfterFieldName"),
    "plausibleStartBeforeEnd": ("plausibleStartBeforeEndFieldName",),
    "plausibleGender": ("plausibleGender",),
    "plausibleGenderUseDescendants": ("plausibleGenderUseDescendants",),
    "plausibleUnitConceptIds": ("plausibleUnitConceptIds",),
}
_FILTER_CLAUSE = re.compile(r"\s*(\w+)\s*(==|!=)\s*'([^']*)'\s*")


@dataclass(frozen=True)
class DqdCheckType:
    """One DQD check type from the check descriptions."""

    level: CheckLevel
    name: str  # e.g. "isRequired"
    description: str  # template with @cdmTableName, @cdmFieldName, ... placeholders
    kahn_context: str
    kahn_category: str
    kahn_subcategory: str
    severity: str  # "fatal", "convention" or "characterization"
    sql_file: str  # DQD's SQL template name (not shipped)
    evaluation_filter: str  # DQD's applicability rule, e.g. "isForeignKey=='Yes' & fkDomain!= ''"
    filter_clauses: tuple[tuple[str, str, str], ...]  # the rule parsed: (column, "==" | "!=", literal)

    def applies_to(self, row: DqdRow) -> bool:
        """Whether the rule holds for a row of this level; like DQD (R), a blank cell satisfies no clause."""
        return row.level == self.level and all(
            row.values.get(column) is not None and (row.values[column] == literal) == (op == "==")
            for column, op, literal in self.filter_clauses
        )


@dataclass(frozen=True)
class DqdRow:
    """One row of a DQD table-, field- or concept-level CSV. Names are lower-cased to match the CDM spec;
    ``values`` holds the non-blank cells by column name."""

    level: CheckLevel
    table: str
    field: str | None
    concept_ids: tuple[int, ...]  # concept-level rows: one id, or several for plausibleGenderUseDescendants
    unit_concept_id: int | None
    values: Mapping[str, str] = dataclasses.field(hash=False, repr=False)

    def threshold_pct(self, check_name: str) -> float:
        """Percent of violating rows a check tolerates; blank means 0 (any violation fails), as in DQD."""
        raw = self.values.get(f"{check_name}Threshold")
        try:
            return float(raw) if raw is not None else 0.0
        except ValueError:
            raise ConfigError(
                f"DQD {self.level} {self.table}.{self.field} {check_name}Threshold: expected a number, found {raw!r}"
            ) from None


@dataclass(frozen=True)
class DqdCheck:
    """One applicable check: a check type on one table / field / concept, ready to be turned into SQL."""

    check_name: str
    level: CheckLevel
    table: str
    field: str | None
    concept_ids: tuple[int, ...]  # concept-level rows: one id, or several for plausibleGenderUseDescendants
    unit_concept_id: int | None
    threshold_pct: float
    severity: str
    params: Mapping[str, str] = dataclasses.field(hash=False)
    """DQD parameter name -> raw cell, e.g. {"fkTableName": "concept"}. Table and field names are
    lower-cased; plausible bounds stay OHDSI SQL (SQL Server dialect): "'19500101'",
    "DATEADD(dd,1,GETDATE())"; plausibleUnitConceptIds is a comma list where -1 means no unit."""


@dataclass(frozen=True)
class DqdCatalogue:
    """The check types and the level CSVs' rows."""

    check_types: tuple[DqdCheckType, ...]
    rows: tuple[DqdRow, ...]

    def check_type(self, name: str, level: CheckLevel) -> DqdCheckType:
        for check_type in self.check_types:
            if (check_type.name, check_type.level) == (name, level):
                return check_type
        raise KeyError(f"DQD: no {level} check {name!r}")

    def rows_at(self, level: CheckLevel) -> tuple[DqdRow, ...]:
        return tuple(row for row in self.rows if row.level == level)


@functools.cache
def dqd_catalogue() -> DqdCatalogue:
    """The packaged DQD v5.4 catalogue, loaded once."""
    return load_dqd_catalogue()


def load_dqd_catalogue(extra_rows: Mapping[CheckLevel, Sequence[Path]] | None = None) -> DqdCatalogue:
    """The packaged catalogue plus rows from extra level CSVs in DQD's format (e.g. for G-CDM tables)."""
    check_types = tuple(
        _check_type_from(row)
        for row in _read_csv(_DQD_DIR / "OMOP_CDMv5.4_Check_Descriptions.csv", _DESCRIPTION_COLUMNS)
    )
    rows: list[DqdRow] = []
    for level, file_name in _DQD_LEVEL_FILES.items():
        sources = [_DQD_DIR / file_name, *((extra_rows or {}).get(level, ()))]
        rows += [_dqd_row_from(level, row) for source in sources for row in _read_csv(source)]
    return DqdCatalogue(check_types, tuple(rows))


def applicable_checks(
    levels: Iterable[CheckLevel] | None = None, catalogue: DqdCatalogue | None = None
) -> Iterator[DqdCheck]:
    """Every check the catalogue says applies, in check-description then CSV order."""
    catalogue = catalogue or dqd_catalogue()
    wanted = set(levels) if levels is not None else set(_DQD_LEVEL_FILES)
    for check_type in catalogue.check_types:
        if check_type.level not in wanted:
            continue
        for row in catalogue.rows_at(check_type.level):
            if check_type.applies_to(row):
                yield _check_from(check_type, row)


def _check_from(check_type: DqdCheckType, row: DqdRow) -> DqdCheck:
    params = {
        name: row.values[name].lower() if name.endswith(("TableName", "FieldName")) else row.values[name]
        for name in _CHECK_PARAMS.get(check_type.name, ())
        if name in row.values
    }
    return DqdCheck(
        check_name=check_type.name,
        level=check_type.level,
        table=row.table,
        field=row.field,
        concept_ids=row.concept_ids,
        unit_concept_id=row.unit_concept_id,
        threshold_pct=row.threshold_pct(check_type.name),
        severity=check_type.severity,
        params=params,
    )


def _check_type_from(row: Mapping[str, str]) -> DqdCheckType:
    level = cast(CheckLevel, row["checkLevel"].upper())
    if level not in _DQD_LEVEL_FILES:
        raise ConfigError(
            f"DQD check {row['checkName']}: expected level TABLE, FIELD or CONCEPT, found {level!r}"
        )
    return DqdCheckType(
        level=level,
        name=row["checkName"],
        description=row["checkDescription"],
        kahn_context=row["kahnContext"],
        kahn_category=row["kahnCategory"],
        kahn_subcategory=row["kahnSubcategory"],
        severity=row["severity"],
        sql_file=row["sqlFile"],
        evaluation_filter=row["evaluationFilter"],
        filter_clauses=_parse_filter(row["checkName"], row["evaluationFilter"]),
    )


def _parse_filter(check_name: str, expression: str) -> tuple[tuple[str, str, str], ...]:
    clauses = []
    for part in expression.split("&"):
        match = _FILTER_CLAUSE.fullmatch(part)
        if match is None:
            raise ConfigError(
                f"DQD check {check_name} evaluationFilter: expected column=='x' or column!='x' joined by &, "
                f"found {expression!r}"
            )
        clauses.append(match.groups())
    return tuple(clauses)


def _dqd_row_from(level: CheckLevel, row: Mapping[str, str]) -> DqdRow:
    field_name = _value(row, "cdmFieldName")
    where = f"DQD {level} row {row['cdmTableName']}.{field_name}"
    units = _located(where, _ints, _value(row, "unitConceptId") or "")
    return DqdRow(
        level=level,
        table=row["cdmTableName"].lower(),
        field=field_name.lower() if field_name else None,
        concept_ids=_located(where, _ints, _value(row, "conceptId") or ""),
        unit_concept_id=units[0] if units else None,
        values={k: v for k, v in row.items() if v not in _MISSING},
    )


# --- CSV reading --------------------------------------------------------------------------------


def _read_csv(
    source: Traversable | Path, required: Iterable[str] = ("cdmTableName",)
) -> list[dict[str, str]]:
    """Rows of a spec CSV as stripped strings. Copes with a BOM, mixed line endings and Windows-1252."""
    data = source.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or ()]
    if missing := [name for name in required if name not in header]:
        raise ConfigError(
            f"{source}: expected columns {', '.join(missing)}, found {', '.join(header) or 'none'}"
        )
    return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _value(row: Mapping[str, str], column: str) -> str | None:
    """A cell, None when blank or "NA" (the spec's two spellings of missing)."""
    value = row.get(column, "")
    return None if value in _MISSING else value


def _ints(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"expected whole numbers separated by commas, found {raw!r}") from None


def _located(where: str, parse: Callable[[str], _T], raw: str) -> _T:
    """``parse(raw)``, with ``where`` prefixed to the message of a ConfigError it raises."""
    try:
        return parse(raw)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _yes_no(row: Mapping[str, str], column: str, where: str) -> bool:
    value = row.get(column, "").lower()
    if value not in ("yes", "no"):
        raise ConfigError(f"{where} {column}: expected Yes or No, found {row.get(column)!r}")
    return value == "yes"
