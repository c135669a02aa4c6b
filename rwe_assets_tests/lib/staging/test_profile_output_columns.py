"""The output columns of a profile's SQL (profile_inputs.select_list) are bound once per catalog: a raw
layout or macro that changes what the SQL outputs gives another key, so no earlier bind is reused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.staging import profile_inputs
from rwe_assets.lib.staging.model import BY_NAME, OPTIONAL_PROVENANCE

SQL_FILE = Path("care_site/things.sql")  # named in errors only
# Every required column of staging.care_site from the raw view, plus whatever else the view holds.
TABLE = BY_NAME["care_site"]
REQUIRED = [n for n in TABLE.column_names if n not in TABLE.optional | OPTIONAL_PROVENANCE]
SQL = "SELECT *, NULL AS _failure FROM raw_things"


class Binds:
    """A connection that counts the LIMIT 0 binds select_list runs."""

    def __init__(self, con):
        self.con, self.binds = con, 0

    def execute(self, sql, *args):
        self.binds += "LIMIT 0" in sql
        return self.con.execute(sql, *args)


def _raw_view(con, extra: str = "", value: str = "'x'") -> None:
    columns = ", ".join(f'{value} AS "{n}"' for n in REQUIRED)
    con.execute(f"CREATE OR REPLACE VIEW raw_things AS SELECT {columns}{extra}")


def _select(con, macros: str = "") -> str:
    catalog = profile_inputs.catalog_key(con, macros)
    return profile_inputs.select_list(con, "care_site", SQL, {}, SQL_FILE, catalog)


def test_a_changed_raw_layout_is_bound_again():
    con = Binds(duckdb.connect())
    _raw_view(con)
    first = _select(con)
    assert _select(con) == first and con.binds == 1  # the same catalog: bound once
    _raw_view(con, ", TIMESTAMPTZ '2024-01-01 00:00:00+00' AS _version_at")  # a column the SQL now outputs
    second = _select(con)
    assert con.binds == 2
    assert 'NULL AS "_version_at"' in first
    assert 'TRY_CAST("_version_at" AS TIMESTAMPTZ) AS "_version_at"' in second


def test_a_changed_column_type_or_macro_text_is_another_catalog():
    con = duckdb.connect()
    _raw_view(con)
    before = profile_inputs.catalog_key(con, "")
    assert profile_inputs.catalog_key(con, "-- another macro text") != before
    _raw_view(con, value="1")  # the same names, typed INTEGER
    assert profile_inputs.catalog_key(con, "") != before


def test_a_missing_column_is_refused_whether_or_not_bound_before():
    con = duckdb.connect()
    con.execute("CREATE VIEW raw_things AS SELECT 'x' AS source_system")
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"expected the columns of staging\.care_site"):
            _select(con)
