"""The CDM build's SQL (lib/sql/cdm/*.sql) through the project's one loader (lib/sql_loader.py): the
files' ``$name`` values default to ``PARAMETERS``, the named concept ids every file may use; ``{name}``
placeholders and ``-- name:`` sections are as lib/sql_loader.py and lib/sql/README.md describe.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources

import duckdb

from rwe_assets import constants as c
from rwe_assets.lib import sql_loader
from rwe_assets.lib.cdm import intermediates
from rwe_assets.lib.sql_loader import Fragment, SqlFolder, fill_text, statements

__all__ = [  # the names the build, the eras, the visit rollup, the lineage and Spark import from here
    "PARAMETERS",
    "SQL_DIR",
    "Fragment",
    "execute",
    "fill_text",
    "render",
    "run",
    "sections",
    "sql_text",
    "statements",
]

SQL_DIR = resources.files("rwe_assets.lib") / "sql" / "cdm"

PARAMETERS = {
    "type_ehr": c.EHR,
    "type_ehr_prescription": c.EHR_PRESCRIPTION,
    "type_ehr_administration": c.EHR_ADMINISTRATION_RECORD,
    "type_ehr_encounter": c.EHR_ENCOUNTER_RECORD,
    "type_claim": c.CLAIM,
    "type_pharmacy_claim": c.PHARMACY_CLAIM,
    "primary_diagnosis": c.PRIMARY_DIAGNOSIS,
    "secondary_diagnosis": c.SECONDARY_DIAGNOSIS,
    "admitting_diagnosis": c.ADMITTING_DIAGNOSIS,
    "utf8": c.UTF8,
    "english": c.ENGLISH,
    "male": c.MALE,
    "female": c.FEMALE,
    "white": c.WHITE,
    "black": c.BLACK_OR_AFRICAN_AMERICAN,
    "asian": c.ASIAN,
    "american_indian": c.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    "pacific_islander": c.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
    "hispanic": c.HISPANIC_OR_LATINO,
    "not_hispanic": c.NOT_HISPANIC_OR_LATINO,
    "allergy_to_drug": c.ALLERGY_TO_DRUG,
    "allergic_disposition": c.ALLERGIC_DISPOSITION,
    "intolerance_to_drug": c.INTOLERANCE_TO_DRUG,
    "intolerance_to_substance": c.INTOLERANCE_TO_SUBSTANCE,
    # a file run a part at a time (lib/cdm/intermediates.py PARTS) run whole: one part, every row
    "part": 0,
    "parts": 1,
}
"""Named concept ids the build's SQL uses as ``$name`` (defined once in rwe_assets/constants.py), and
the part of a file run in parts."""


def cdm_sql() -> SqlFolder:
    """lib/sql/cdm as a ``SqlFolder`` (``SQL_DIR`` read at call time, so a test may point it elsewhere)."""
    return _folder(SQL_DIR)


@functools.cache
def _folder(path) -> SqlFolder:
    return SqlFolder(path, "lib/sql/cdm")


@functools.cache
def sql_text(name: str) -> str:
    """The text of lib/sql/cdm/<name>.sql."""
    return cdm_sql().text(name)


@functools.cache
def sections(name: str) -> dict[str, str]:
    """The ``-- name: <section>`` sections of lib/sql/cdm/<name>.sql, unrendered."""
    return cdm_sql().sections(name)


def render(name: str, section: str | None = None, fill: Mapping[str, str] | None = None) -> str:
    """lib/sql/cdm/<name>.sql, or one section of it, filled (``SqlFolder.render``)."""
    return cdm_sql().render(name, section, fill)


def execute(con: duckdb.DuckDBPyConnection, statement: str, values: Mapping[str, object] = PARAMETERS):
    """Run one statement, binding exactly the ``$parameters`` it uses from `values`."""
    return sql_loader.execute(con, statement, values)


def run(
    con: duckdb.DuckDBPyConnection,
    name: str,
    fill: Mapping[str, str] | None = None,
    values: Mapping[str, object] = PARAMETERS,
) -> None:
    """Run every statement of lib/sql/cdm/<name>.sql in order (its large intermediates stored as
    lib/cdm/intermediates.py says, a part at a time where it says so)."""
    intermediates.run(con, name, statements(render(name, fill=fill)), values)
