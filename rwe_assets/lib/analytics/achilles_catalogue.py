"""The Achilles catalogue and result-table layouts, read from the files OHDSI/Achilles ships
(lib/sql/analytics/achilles/): the standard analyses by id with their strata names, and the columns of
achilles_results, achilles_results_dist and achilles_analysis."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

ACHILLES_VERSION = "rwe_assets-achilles-1"
"""Written as stratum_2 of analysis 0, where Achilles writes its own version."""
RESULTS_TABLE = "achilles_results"
DIST_TABLE = "achilles_results_dist"
ANALYSIS_TABLE = "achilles_analysis"
SUPPRESSION_TABLE = "achilles_suppression"
_DATA = resources.files("rwe_assets.lib") / "sql" / "analytics" / "achilles"
_SCHEMA_TYPES = {"int": "INTEGER", "bigint": "BIGINT", "varchar(255)": "VARCHAR", "float": "DOUBLE"}
"""Achilles schema-file type -> DuckDB type (DuckDB reports VARCHAR(255) as VARCHAR)."""
ANALYSIS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("analysis_id", "INTEGER"),
    ("analysis_name", "VARCHAR"),
    *((f"stratum_{k}_name", "VARCHAR") for k in range(1, 6)),
    ("is_default", "INTEGER"),
    ("category", "VARCHAR"),
)
"""achilles_analysis as Achilles creates it (no schema file ships for it)."""


@dataclass(frozen=True)
class AnalysisDetail:
    analysis_id: int
    distribution: int  # 1: a distribution (achilles_results_dist), 0: counts, -1: analysis 0 (both)
    name: str
    strata_names: tuple[str, str, str, str, str]
    is_default: int
    category: str


@cache
def analysis_details() -> dict[int, AnalysisDetail]:
    """The standard Achilles analyses by id (achilles_analysis_details.csv)."""
    with (_DATA / "achilles_analysis_details.csv").open(encoding="utf-8") as handle:
        return {
            int(row["ANALYSIS_ID"]): AnalysisDetail(
                int(row["ANALYSIS_ID"]),
                int(row["DISTRIBUTION"]),
                row["ANALYSIS_NAME"],
                tuple(row[f"STRATUM_{k}_NAME"] for k in range(1, 6)),  # type: ignore[arg-type]
                int(row["IS_DEFAULT"]),
                row["CATEGORY"],
            )
            for row in csv.DictReader(handle)
        }


@cache
def schema_columns(table: str) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of achilles_results or achilles_results_dist, from Achilles's schema file."""
    with (_DATA / f"schema_{table}.csv").open(encoding="utf-8") as handle:
        return tuple(
            (row["FIELD_NAME"].strip().lower(), _SCHEMA_TYPES[row["FIELD_TYPE"].strip().lower()])
            for row in csv.DictReader(handle)
        )
