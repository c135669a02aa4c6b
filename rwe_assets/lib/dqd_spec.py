"""The OHDSI Data Quality Dashboard (DQD) v5.4 check catalogue as code: the check types, the table-,
field- and concept-level rows, and the checks that apply, from which the data-quality checks are built.

The catalogue is third-party CSVs packaged under ``rwe_assets/lib/spec/dqd_v5.4/`` (Apache 2.0, see the
README and LICENSE there), read with ``spec_csv``; nothing is read from outside the package.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from rwe_assets.errors import ConfigError
from rwe_assets.lib.spec_csv import MISSING, SPEC_DIR, located, read_spec_csv, spec_value

_DQD_DIR = SPEC_DIR / "dqd_v5.4"
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
        for row in read_spec_csv(_DQD_DIR / "OMOP_CDMv5.4_Check_Descriptions.csv", _DESCRIPTION_COLUMNS)
    )
    rows: list[DqdRow] = []
    for level, file_name in _DQD_LEVEL_FILES.items():
        sources = [_DQD_DIR / file_name, *((extra_rows or {}).get(level, ()))]
        rows += [_dqd_row_from(level, row) for source in sources for row in read_spec_csv(source)]
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
    field_name = spec_value(row, "cdmFieldName")
    where = f"DQD {level} row {row['cdmTableName']}.{field_name}"
    units = located(where, _ints, spec_value(row, "unitConceptId") or "")
    return DqdRow(
        level=level,
        table=row["cdmTableName"].lower(),
        field=field_name.lower() if field_name else None,
        concept_ids=located(where, _ints, spec_value(row, "conceptId") or ""),
        unit_concept_id=units[0] if units else None,
        values={k: v for k, v in row.items() if v not in MISSING},
    )


def _ints(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"expected whole numbers separated by commas, found {raw!r}") from None
