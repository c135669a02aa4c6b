"""SQL text built in Python: a name or a value written into a statement, quoted so that it can hold
any character. For values, prefer DuckDB parameters; these are for where a statement takes none (an
identifier, a view definition, SQL text written out for a reader)."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """ "name" with inner double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """'text' with inner single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
