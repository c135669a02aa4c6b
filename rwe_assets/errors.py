"""Errors the project raises on bad input or bad configuration.

Messages follow one shape: what was expected, what was found, and where (file, line, field).
They never quote a data value: a value may be PII, and messages end up in logs and the Dagster UI.
"""

from __future__ import annotations


class RweError(Exception):
    """Base class of every error rwe_assets raises on purpose."""


class ConfigError(RweError):
    """A setting or the source registry is invalid."""


class InputFileError(RweError):
    """A landed file cannot be read as its source declares. Names the file, and the line and field
    where they are known."""

    def __init__(self, path: str, problem: str, *, line: int | None = None, field: str | None = None):
        self.path = path
        self.problem = problem
        self.line = line
        self.field = field
        where = path if line is None else f"{path} line {line}"
        if field is not None:
            where += f" field {field}"
        super().__init__(f"{where}: {problem}")


class ReconciliationError(RweError):
    """Row counts of a layer do not add up (rows in != rows out + rows quarantined)."""
