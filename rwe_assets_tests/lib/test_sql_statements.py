"""lib/sql_loader.py splits a SQL text into statements at the `;` that ends one: not at a `;` in a
comment or in a quoted string or name, and binds only the `$parameters` written as code."""

from __future__ import annotations

import duckdb

from rwe_assets.lib import sql_loader

TEXT = """-- the rule of this file; written over two lines;
CREATE TABLE t AS SELECT 1 AS a, -- the first column;
    2 AS b;
INSERT INTO t VALUES (3, length('x;y -- not a comment;
')); /* two; statements? no */ INSERT INTO t VALUES (length('it''s;'), 5);
-- a last comment;
"""


def test_statements_end_at_a_semicolon_outside_comments_and_quotes():
    found = sql_loader.statements(TEXT)
    assert [s.strip().split()[0] for s in found] == ["--", "INSERT", "/*"]
    assert found[0].rstrip().endswith("2 AS b")  # one statement across the commented `;`
    con = duckdb.connect()
    for statement in found:
        con.execute(statement)
    assert con.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [(1, 2), (3, 22), (5, 5)]


def test_parameters_are_bound_only_where_written_as_code():
    con = duckdb.connect()
    statement = "SELECT '$not_a_value' AS s, $limit_days AS n -- $nor_this"
    row = sql_loader.execute(con, statement, {"limit_days": 7}).fetchone()
    assert row == ("$not_a_value", 7)
