"""The project's one SQL loader: read a file of a SQL folder (lib/sql/<layer>/), pick a section, fill
its placeholders, split it into statements and run them with their parameters.

A file has two kinds of holes, never mixed up (lib/sql/README.md):

``$name``
    A value (a concept id, a number of days, a flag). DuckDB binds it as a parameter; values never
    become SQL text. The caller gives the values (``execute``, ``SqlFolder.run``).
``{name}``
    SQL text that code chooses: an identifier (quoted by ``fill_text``), a section of the same file (its
    query inlined in parentheses) or a ``Fragment`` the caller built (a quoted qualified name, numbers,
    a VALUES list, a join), written as is. Only lower-case names are placeholders, so a regex quantifier
    such as ``[0-9]{4}`` is left alone; text in ``--`` comments is never filled.

A file may hold several statements, split at each ``;`` outside comments (``--``, ``/* */``) and quoted
strings or names (``'...'``, ``"..."``, a doubled quote inside them), and named sections, each starting
with a line ``-- name: <section>``; the text before the first section is the file's rule comment.
Dollar-quoted and backslash-escaped (``E'...'``) strings are not recognized: no file uses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib.sql_text import quote_identifier

SECTION = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
# a `--` comment is matched first, so a placeholder inside one is kept as written
PLACEHOLDER = re.compile(r"(--[^\n]*)|\{([a-z_][a-z0-9_]*)\}")
PARAMETER = re.compile(r"\$([A-Za-z_]\w*)")
LINE_COMMENT = re.compile(r"--[^\n]*")
# what is not SQL code: a comment or a quoted string or name; and the `;` that ends a statement
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|;", re.DOTALL)


class Fragment(str):
    """SQL text built by code (an already quoted name, a number, a VALUES list): filled in as is."""


class SqlFolder:
    """The SQL files of one folder, read once each: ``text``, ``sections``, ``render``, ``run``."""

    def __init__(self, folder: Traversable | Path, label: str | None = None):
        self.folder = folder
        self.label = label or str(folder)  # how errors name the folder
        self._texts: dict[str, str] = {}
        self._sections: dict[str, dict[str, str]] = {}

    def text(self, name: str) -> str:
        """The text of <folder>/<name>.sql."""
        if name not in self._texts:
            self._texts[name] = (self.folder / f"{name}.sql").read_text(encoding="utf-8")
        return self._texts[name]

    def sections(self, name: str) -> dict[str, str]:
        """The ``-- name: <section>`` sections of <folder>/<name>.sql, unrendered."""
        if name not in self._sections:
            parts = SECTION.split(self.text(name))  # [header, name1, body1, name2, body2, ...]
            self._sections[name] = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
        return self._sections[name]

    def render(self, name: str, section: str | None = None, fill: Mapping[str, str] | None = None) -> str:
        """<folder>/<name>.sql, or one section of it, filled (``fill_text``); in a section, ``{other}``
        naming another section of the file is that section's query, rendered, in parentheses."""
        fill = dict(fill or {})
        if section is None:
            return fill_text(self.text(name), fill, f"{self.label}/{name}.sql")
        text = self.sections(name)[section]
        for other in self.sections(name):
            if other != section and other not in fill and "{" + other + "}" in text:
                fill[other] = Fragment("(\n" + self.render(name, other, fill) + "\n)")
        return fill_text(text, fill, f"{self.label}/{name}.sql section {section}")

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        fill: Mapping[str, str] | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:
        """Run every statement of <folder>/<name>.sql in order, binding its ``$parameters``."""
        for statement in statements(self.render(name, fill=fill)):
            execute(con, statement, values or {})

    def clear(self) -> None:
        """Forget the files read (a test that rewrites them)."""
        self._texts.clear()
        self._sections.clear()


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

    return PLACEHOLDER.sub(substitute, text)


def fragments(fill: Mapping[str, str]) -> dict[str, Fragment]:
    """`fill` with every value written as is (SQL text code already built and quoted)."""
    return {key: Fragment(value) for key, value in fill.items()}


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders `text` uses outside comments."""
    return {m.group(2) for m in PLACEHOLDER.finditer(text) if m.group(2)}


def statements(text: str) -> list[str]:
    """The statements of a SQL text, split at each `;` outside comments and quotes; pieces holding
    only comments and blanks left out."""
    pieces, start = [], 0
    for match in _NOT_CODE.finditer(text):
        if match.group() == ";":
            pieces.append(text[start : match.start()])
            start = match.end()
    pieces.append(text[start:])
    return [piece for piece in pieces if code_of(piece).strip()]


def code_of(text: str) -> str:
    """`text` without its comments, its quoted strings and names emptied ('', ""): where statement ends
    and ``$parameters`` are looked for."""

    def blank(match: re.Match[str]) -> str:
        token = match.group()
        if token.startswith(("--", "/*")):
            return " "
        return token if token == ";" else token[0] * 2

    return _NOT_CODE.sub(blank, text)


def execute(con: duckdb.DuckDBPyConnection, statement: str, values: Mapping[str, object]):
    """Run one statement, binding exactly the ``$parameters`` it uses (outside comments and quotes)
    from `values`."""
    used = set(PARAMETER.findall(code_of(statement)))
    missing = used - values.keys()
    if missing:
        raise ConfigError(f"SQL parameters: expected values for {sorted(missing)}, found none")
    return con.execute(statement, {k: values[k] for k in used})


def _identifier(value: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty SQL name, found {value!r}")
    return quote_identifier(value)
