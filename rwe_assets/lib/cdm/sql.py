"""The one loader of the CDM build's SQL (lib/sql/cdm/*.sql): read a file, pick a section, fill its
placeholders, split it into statements and run them with their parameters.

A file has two kinds of holes, never mixed up:

``$name``
    A value (a concept id, a number of days, a flag). DuckDB binds it as a parameter; values never
    become SQL text. ``PARAMETERS`` holds the named concept ids every file may use; a caller adds its own.
``{name}``
    SQL text that code chooses: an identifier (quoted by ``render``), a section of the same file (its
    query inlined in parentheses) or a ``Fragment`` the caller built (numbers, a VALUES list, a table
    kind), written as is. ``{name}`` is the style most of the project's SQL uses (the quality checks'
    templates too). Only lower-case names are placeholders, so a regex quantifier such as ``[0-9]{4}``
    is left alone; text in ``--`` comments is never filled.

A file may hold several statements (split at ``;`` ending a line) and named sections, each starting with
a line ``-- name: <section>``; the text before the first section is the file's rule comment.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources

import duckdb

from rwe_assets import constants as c
from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_text import quote_identifier

SQL_DIR = resources.files("rwe_assets.lib") / "sql" / "cdm"
_SECTION = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
# a `--` comment is matched first, so a placeholder inside one is kept as written
_PLACEHOLDER = re.compile(r"(--[^\n]*)|\{([a-z_][a-z0-9_]*)\}")
_PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")
_LINE_COMMENT = re.compile(r"--[^\n]*")

PARAMETERS = {
    "type_ehr": c.EHR,
    "type_ehr_prescription": c.EHR_PRESCRIPTION,
    "type_ehr_administration": c.EHR_ADMINISTRATION_RECORD,
    "type_ehr_encounter": c.EHR_ENCOUNTER_RECORD,
    "type_claim": c.CLAIM,
    "type_pharmacy_claim": c.PHARMACY_CLAIM,
    "primary_diagnosis": c.PRIMARY_DIAGNOSIS,
    "secondary_diagnosis": c.SECONDARY_DIAGNOSIS,
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
}
"""Named concept ids the build's SQL uses as ``$name`` (defined once in rwe_assets/constants.py)."""


class Fragment(str):
    """SQL text built by code (an already quoted name, a number, a VALUES list): filled in as is."""


@functools.cache
def sql_text(name: str) -> str:
    """The text of lib/sql/cdm/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


@functools.cache
def sections(name: str) -> dict[str, str]:
    """The ``-- name: <section>`` sections of lib/sql/cdm/<name>.sql, unrendered."""
    parts = _SECTION.split(sql_text(name))  # [header, name1, body1, name2, body2, ...]
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def render(name: str, section: str | None = None, fill: Mapping[str, str] | None = None) -> str:
    """lib/sql/cdm/<name>.sql, or one section of it, filled (``fill_text``); in a section, ``{other}``
    naming another section of the file is that section's query, rendered, in parentheses."""
    fill = dict(fill or {})
    if section is None:
        return fill_text(sql_text(name), fill, f"{name}.sql")
    text = sections(name)[section]
    for other in sections(name):
        if other != section and other not in fill and "{" + other + "}" in text:
            fill[other] = Fragment("(\n" + render(name, other, fill) + "\n)")
    return fill_text(text, fill, f"{name}.sql section {section}")


def fill_text(text: str, fill: Mapping[str, str], where: str) -> str:
    """`text` with its ``{placeholders}`` filled: a ``Fragment`` as is, any other string as a quoted
    identifier. An unknown placeholder is an error naming `where`."""

    def substitute(match: re.Match[str]) -> str:
        comment, key = match.groups()
        if comment is not None:
            return comment
        if key not in fill:
            raise ConfigError(f"{where}: expected a known placeholder, found {{{key}}}")
        value = fill[key]
        return value if isinstance(value, Fragment) else _identifier(value, where)

    return _PLACEHOLDER.sub(substitute, text)


def statements(text: str) -> list[str]:
    """The statements of a SQL text (split at a `;` ending a line), comment-only pieces left out."""
    return [s for s in text.split(";\n") if _LINE_COMMENT.sub("", s).strip()]


def execute(con: duckdb.DuckDBPyConnection, statement: str, values: Mapping[str, object] = PARAMETERS):
    """Run one statement, binding exactly the ``$parameters`` it uses from `values`."""
    used = set(_PARAMETER.findall(_LINE_COMMENT.sub("", statement)))
    missing = used - values.keys()
    if missing:
        raise ConfigError(f"SQL parameters: expected values for {sorted(missing)}, found none")
    return con.execute(statement, {k: values[k] for k in used})


def run(
    con: duckdb.DuckDBPyConnection,
    name: str,
    fill: Mapping[str, str] | None = None,
    values: Mapping[str, object] = PARAMETERS,
) -> None:
    """Run every statement of lib/sql/cdm/<name>.sql in order."""
    for statement in statements(render(name, fill=fill)):
        execute(con, statement, values)


def _identifier(value: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty SQL name, found {value!r}")
    return quote_identifier(value)
