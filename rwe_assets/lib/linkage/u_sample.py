"""The records Splink samples to estimate u (model._with_u), and list overlaps looked up on them.

Splink estimates u over random pairs of a deterministic sample of records; taking that sample here
lets each list_has_any over every sampled pair (identifiers of a Synthea site: most of the u time) be
replaced by a lookup of the few overlapping partners, found once by a join on the list elements. The
estimate is Splink's own (rwe_assets_tests/lib/linkage/test_u_overlap_lookups.py)."""

from __future__ import annotations

import copy
import re

import duckdb


def sample(con: duckdb.DuckDBPyConnection, settings: dict, max_pairs: int, seed: int) -> int:
    """TEMP TABLE lk_u_sample: the records of lk_model_input Splink samples for u (its deterministic
    sample of about sqrt(2 max_pairs) records by a hash of record_id and seed), numbered (u_rid);
    returns their number."""
    from splink.internals.dialects import SplinkDialect
    from splink.internals.estimate_u import _rows_needed_for_n_pairs
    from splink.internals.input_column import InputColumn

    total = con.execute("SELECT count(*) FROM lk_model_input").fetchone()[0]
    uid = InputColumn(settings["unique_id_column_name"], sqlglot_dialect_str="duckdb")
    where = SplinkDialect.from_string("duckdb").proportion_sample_sql(
        _rows_needed_for_n_pairs(max_pairs) / max(total, 1), [uid], seed=seed
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE lk_u_sample AS SELECT *, (row_number() OVER (ORDER BY record_id))::INTEGER "
        f"AS u_rid FROM lk_model_input WHERE 1=1 {where}"
    )
    return con.execute("SELECT count(*) FROM lk_u_sample").fetchone()[0]


# list_has_any(a_l, b_r) over every pair of the u sample: a hash set per pair and call (identifiers of a
# Synthea site: 14 of the 17 CPU s of u at 28k records). Where few pairs overlap (at most this many per
# record), each record's overlapping partners are listed once by an equi-join on the elements instead.
OVERLAP_MAX_PER_RECORD = 50
_LIST_HAS_ANY = re.compile(r"list_has_any\((\w+)_([lr]), (\w+)_([lr])\)")


def overlap_lookups(con: duckdb.DuckDBPyConnection, comparisons: list[dict], sampled: int) -> list[dict]:
    """`comparisons` with each list_has_any(a_<side>, b_<other side>) whose lists overlap in few pairs
    of lk_u_sample replaced by a lookup in a column added to lk_u_sample (ov_<i>: the u_rid of every
    record whose b meets this record's a), NULL where list_has_any is (a NULL list): the same levels."""
    calls = sorted(
        {
            m.groups()
            for c in comparisons
            for lv in c["comparison_levels"]
            for m in _LIST_HAS_ANY.finditer(lv["sql_condition"])
        }
    )
    replace = {}
    for a, side_a, b, side_b in calls:
        if side_a == side_b:
            continue
        column = f"ov_{len(replace)}"
        if not overlap_column(con, a, b, column, OVERLAP_MAX_PER_RECORD * sampled):
            continue
        replace[f"list_has_any({a}_{side_a}, {b}_{side_b})"] = (
            f"(CASE WHEN {a}_{side_a} IS NULL OR {b}_{side_b} IS NULL THEN NULL "
            f"ELSE list_contains({column}_{side_a}, u_rid_{side_b}) END)"
        )
    result = copy.deepcopy(comparisons)
    for comparison in result:
        for level in comparison["comparison_levels"]:
            for call, lookup in replace.items():
                level["sql_condition"] = level["sql_condition"].replace(call, lookup)
    return result


def overlap_column(con: duckdb.DuckDBPyConnection, a: str, b: str, column: str, limit: int) -> bool:
    """Add `column` to lk_u_sample: for each record, the u_rid of the other records whose list `b`
    shares an element with its list `a` (an empty list if none); False, nothing added, if more than
    `limit` ordered pairs of records share one (a list common to most records: evaluated as it is)."""
    elements = "SELECT u_rid, unnest({0}) AS e FROM lk_u_sample"
    shared = (
        f"SELECT DISTINCT x.u_rid AS x, y.u_rid AS y FROM ({elements.format(a)}) x "
        f"JOIN ({elements.format(b)}) y ON x.e = y.e AND x.u_rid <> y.u_rid"
    )
    bound = con.execute(
        f"SELECT coalesce(sum(x.n * y.n), 0) FROM (SELECT e, count(*) AS n FROM ({elements.format(a)}) GROUP BY e) x "
        f"JOIN (SELECT e, count(*) AS n FROM ({elements.format(b)}) GROUP BY e) y USING (e)"
    ).fetchone()[0]
    if bound > limit:
        return False
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE lk_u_sample AS SELECT s.*, coalesce(o.partners, []::INTEGER[]) AS {column} "
        f"FROM lk_u_sample s LEFT JOIN (SELECT x, list(y) AS partners FROM ({shared}) GROUP BY x) o ON o.x = s.u_rid"
    )
    return True
