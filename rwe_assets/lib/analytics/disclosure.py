"""Small-cell suppression: the one minimum cell count every result meant for sharing obeys.

A count of persons or records below the minimum (default 5, environment variable RWE_MIN_CELL_COUNT)
is never written to a shared or exported result: the Achilles tables (lib/analytics/achilles.py) drop
such rows, the DQD JSON export (lib/analytics/dqd_export.py) blanks such counts. A minimum of 1 shows
every cell (0 never appears as a cell). Where each rule applies is listed in docs/analytics.md.

The setting is "minimum shown", not Achilles's ``smallCellCount`` ("largest hidden"): Achilles deletes
``count_value <= smallCellCount``, we delete ``count_value < min_cell_count``, so Achilles's default 5
equals a minimum of 6 here. The comparison lives in ``shown()`` and ``suppressed_sql()`` only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rwe_assets.errors import ConfigError

DEFAULT_MIN_CELL_COUNT = 5
ENV_VAR = "RWE_MIN_CELL_COUNT"


def min_cell_count(environ: Mapping[str, str] | None = None, settings: object | None = None) -> int:
    """The minimum cell count: the settings' ``min_cell_count`` when they carry one, else
    RWE_MIN_CELL_COUNT from the environment, else DEFAULT_MIN_CELL_COUNT. Must be a whole number >= 1."""
    configured = getattr(settings, "min_cell_count", None)
    if configured is not None:
        return check_min_cell_count(configured)
    env = os.environ if environ is None else environ
    raw = (env.get(ENV_VAR) or "").strip()
    if not raw:
        return DEFAULT_MIN_CELL_COUNT
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_VAR}: expected a whole number, found {raw!r}") from None
    return check_min_cell_count(value)


def check_min_cell_count(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{ENV_VAR}: expected a whole number >= 1, found {value!r}")
    return value


def shown(count: int | None, minimum: int) -> bool:
    """Whether a count may appear in a shared result: 0 and NULL say nothing about a person; 1 to
    minimum - 1 are small cells."""
    return count is None or count == 0 or count >= minimum


def suppressed_sql(column: str, minimum: int) -> str:
    """A SQL predicate true for the rows whose ``column`` is a small cell (the rows to drop)."""
    return f"({column} > 0 AND {column} < {int(check_min_cell_count(minimum))})"
