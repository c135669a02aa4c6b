"""Compare two OMOP CDM DuckDB files: do they hold the same facts, whatever surrogate ids each build gave?

Used to show, for example, that a CDM built incrementally after corrections equals one built from the
corrected extract alone. Their person_id, visit_occurrence_id, provider_id, ... may differ; the facts
they record may not.

Method: every row becomes a content hash in which ids are replaced by what they point to, and the two
multisets of hashes are compared per table.

- Which columns are ids comes from the CDM spec (OMOP v5.4 plus the project's G-CDM tables). A table's
  own primary key is left out. A foreign key to a table with a surrogate primary key (person,
  visit_occurrence, provider, care_site, location, specimen, ...) is replaced by the hash of the row it
  points to. Concept ids and other vocabulary keys stay values: they are stable across builds. Three
  references the spec does not declare are added (UNDECLARED_REFERENCES).
- First pass, in topological order of those references (location -> care_site -> provider -> person ->
  visit_occurrence -> visit_detail -> events): per row, md5 of its columns as JSON (so NULL equals NULL
  and differs from every value), with references replaced by the referenced row's first-pass hash. Each
  table keeps id -> hash for the tables that point to it.
- Second pass, for the references the first pass cannot order: self references
  (visit_occurrence.preceding_visit_occurrence_id, visit_detail.parent_visit_detail_id, ...) and
  polymorphic ones, whose table is named by another column (cost.cost_event_id by cost_domain_id;
  observation, measurement, note and episode_event event ids by a CDM Field concept;
  fact_relationship by domain concepts). The row's hash becomes md5(first-pass hash, referenced rows'
  first-pass hashes). Everything refers to first-pass hashes, so there are no cycles to break.
- A reference that resolves to no row (dangling, its table absent, its id not unique there, a field or
  domain concept the file's vocabulary does not name) keeps its raw id, marked as unresolved: this can
  make two builds differ, never look the same.
- Per table, count each hash on each side; a hash with n more copies on one side is n rows only on
  that side. Those rows are read back by rowid with their original values, ids included.
- A change propagates: a row whose referenced row changed is itself a different fact (a condition of a
  visit whose date changed). Second-pass references do not propagate further (a visit's preceding
  visit changing changes that visit's row only).
- Tables the spec does not know are compared on all their columns as values, ids included.

All of it runs as DuckDB SQL on temp tables of one in-memory connection that ATTACHes both files
READ_ONLY; nothing is written to them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm.compare.hashing import hash_side, hashes_table, side_catalog, side_table
from rwe_assets.lib.cdm.compare.plan import TablePlan, hash_order, plan_table
from rwe_assets.lib.cdm.compare.report import CdmComparison, TableComparison, format_comparison
from rwe_assets.lib.cdm_spec import CDM_SCHEMA, CdmSpec
from rwe_assets.lib.genomics.cdm import gcdm_spec
from rwe_assets.lib.sql_text import quote_literal

__all__ = ["CdmComparison", "TableComparison", "compare_cdms", "format_comparison"]

SIDES = ("a", "b")
# Left out by default: it records build time and input file hashes, which differ per build by design.
BUILD_METADATA_TABLES = ("cdm_source",)
NOT_IN_SPEC_NOTE = "not in the CDM spec: all columns compared as values, ids included"


def compare_cdms(
    path_a: Path, path_b: Path, tables: Sequence[str] | None = None, limit: int = 20
) -> CdmComparison:
    """Compare the `cdm` schema of two DuckDB files, both opened read-only. `tables` defaults to every
    table of either file but the vocabulary's and cdm_source; `limit` caps the sample rows per side."""
    paths = dict(zip(SIDES, (Path(path_a), Path(path_b)), strict=True))
    for path in paths.values():
        if not path.is_file():
            raise ConfigError(f"expected a DuckDB file, found nothing at {path}")
    if limit < 0:
        raise ConfigError(f"expected a limit >= 0, found {limit}")
    spec = gcdm_spec()
    with (
        tempfile.TemporaryDirectory(prefix="rwe-compare-") as spill,
        duckdb.connect(config={"temp_directory": spill}) as con,
    ):
        con.execute("SET enable_progress_bar = false")
        for side, path in paths.items():
            con.execute(f"ATTACH {quote_literal(str(path))} AS {side_catalog(side)} (READ_ONLY)")
        columns = {side: _columns_by_table(con, side, path) for side, path in paths.items()}
        chosen = _chosen_tables(tables, columns, spec)
        plans = {name: plan_table(name, _compared_columns(name, columns), spec) for name in _present(columns)}
        order = hash_order(chosen, plans)
        for side in SIDES:
            hash_side(con, side, [plans[name] for name in order if name in columns[side]], columns[side])
        results = tuple(_compare_table(con, plans[name], columns, limit) for name in chosen)
    return CdmComparison(paths["a"], paths["b"], results)


# --- reading the two files ----------------------------------------------------------------------


def _columns_by_table(con: duckdb.DuckDBPyConnection, side: str, path: Path) -> dict[str, tuple[str, ...]]:
    """Base tables of the side's cdm schema (views have no rowid to read rows back by) -> columns."""
    rows = con.execute(
        """
        SELECT c.table_name, list(c.column_name ORDER BY c.column_index)
        FROM duckdb_columns() c
        SEMI JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        WHERE c.database_name = ? AND c.schema_name = ?
        GROUP BY c.table_name
        """,
        [side_catalog(side), CDM_SCHEMA],
    ).fetchall()
    if not rows:
        raise ConfigError(f"expected tables in schema {CDM_SCHEMA} of {path}, found none")
    return {table: tuple(names) for table, names in rows}


def _present(columns: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(set().union(*(columns[side] for side in SIDES)))


def _compared_columns(table: str, columns: Mapping[str, Mapping[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """The columns both sides hold (A's order); those of the one side holding the table."""
    a, b = columns["a"].get(table), columns["b"].get(table)
    if a is None or b is None:
        return a or b or ()
    return tuple(c for c in a if c in b)


def _chosen_tables(
    tables: Sequence[str] | None, columns: Mapping[str, Mapping[str, Any]], spec: CdmSpec
) -> list[str]:
    present = _present(columns)
    if tables is not None:
        if missing := [t for t in tables if t not in present]:
            raise ConfigError(
                f"expected tables of schema {CDM_SCHEMA} in A or B, found {', '.join(missing)} in neither"
            )
        return list(dict.fromkeys(tables))
    excluded = {t.name for t in spec.tables if t.is_vocabulary} | set(BUILD_METADATA_TABLES)
    spec_order = [t.name for t in spec.tables if t.name in present]
    return [t for t in spec_order + sorted(set(present) - set(spec_order)) if t not in excluded]


# --- comparing one table ------------------------------------------------------------------------

_NO_ROWS = "(SELECT NULL::BIGINT AS rid, NULL::UHUGEINT AS h WHERE false)"


def _compare_table(
    con: duckdb.DuckDBPyConnection,
    plan: TablePlan,
    columns: Mapping[str, Mapping[str, tuple[str, ...]]],
    limit: int,
) -> TableComparison:
    present = {side: plan.name in columns[side] for side in SIDES}
    relation = {side: hashes_table(side, plan.name) if present[side] else _NO_ROWS for side in SIDES}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE cmp_diff AS
        WITH a AS (SELECT h, count(*) AS n FROM {relation["a"]} GROUP BY h),
             b AS (SELECT h, count(*) AS n FROM {relation["b"]} GROUP BY h)
        SELECT h, coalesce(a.n, 0) AS n_a, coalesce(b.n, 0) AS n_b
        FROM a FULL OUTER JOIN b USING (h)
        WHERE coalesce(a.n, 0) <> coalesce(b.n, 0)
        """
    )
    only_a, only_b = con.execute(
        "SELECT coalesce(sum(greatest(n_a - n_b, 0)), 0), coalesce(sum(greatest(n_b - n_a, 0)), 0) FROM cmp_diff"
    ).fetchone()
    rows = {
        side: con.execute(f"SELECT count(*) FROM {relation[side]}").fetchone()[0] if present[side] else None
        for side in SIDES
    }
    samples = {side: _sample(con, side, plan.name, limit) if present[side] else () for side in SIDES}
    a_columns, b_columns = (columns[side].get(plan.name) for side in SIDES)
    return TableComparison(
        table=plan.name,
        rows_a=rows["a"],
        rows_b=rows["b"],
        only_in_a=int(only_a),
        only_in_b=int(only_b),
        sample_a=samples["a"],
        sample_b=samples["b"],
        columns_only_in_a=tuple(c for c in a_columns or () if b_columns and c not in b_columns),
        columns_only_in_b=tuple(c for c in b_columns or () if a_columns and c not in a_columns),
        notes=() if plan.in_spec else (NOT_IN_SPEC_NOTE,),
    )


def _sample(con: duckdb.DuckDBPyConnection, side: str, table: str, limit: int) -> tuple[dict[str, Any], ...]:
    """Up to `limit` rows of this side without a match on the other, as stored (ids included)."""
    mine, other = ("n_a", "n_b") if side == "a" else ("n_b", "n_a")
    rids = con.execute(
        f"""
        SELECT rid FROM (
            SELECT r.rid, d.{mine} - d.{other} AS extra,
                   row_number() OVER (PARTITION BY r.h ORDER BY r.rid) AS copy
            FROM {hashes_table(side, table)} r JOIN cmp_diff d USING (h)
        ) WHERE copy <= extra ORDER BY rid LIMIT ?
        """,
        [limit],
    ).fetchall()
    if not rids:
        return ()
    cursor = con.execute(
        f"SELECT * FROM {side_table(side, table)} WHERE rowid IN (SELECT unnest(?::BIGINT[])) ORDER BY rowid",
        [[rid for (rid,) in rids]],
    )
    names = [d[0] for d in cursor.description]
    return tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
