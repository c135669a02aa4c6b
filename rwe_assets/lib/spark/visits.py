"""The visit rollup (lib/cdm/visits.py) on Spark: the same statements and checks, in DuckDB's dialect,
transpiled (lib/spark/transpile.py) and run on the build's Spark tables (lib/spark/tables.py).

The outputs are temporary tables of the build, ``<prefix>_visit`` and ``<prefix>_visit_map``, that
lib/spark/build.py hands to DuckDB before a DuckDB step; the returned RollupResult names them as the
DuckDB build does (``temp.main``), for the DuckDB steps that read the map (the reconciliation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rwe_assets.lib.cdm import visits
from rwe_assets.lib.spark import tables
from rwe_assets.lib.spark import transpile as tr
from rwe_assets.lib.sql_text import quote_identifier


@dataclass(frozen=True)
class SparkEngine:
    """A visits.RollupEngine over the build's Spark tables."""

    tables: tables.SparkTables

    def columns(self, source: str) -> set[str]:
        return {
            column.lower()
            for column in self.tables.query(tr.transpile(f"SELECT * FROM {source}").spark).columns
        }

    def execute(self, statement: str) -> None:
        self.tables.run(statement, {}, temp_tables=True)  # it drops its work tables: no lazy views

    def rows(self, query: str) -> list[tuple]:
        return [tuple(row) for row in self.tables.query(tr.transpile(query, {}).spark).collect()]


def rollup_visits(
    spark_tables: tables.SparkTables, staged_visits: str, out_prefix: str
) -> visits.RollupResult:
    """visits.rollup_visits on Spark: `staged_visits` and `out_prefix` are bare names of the build's
    tables (a Spark temp view sits in no schema)."""
    work = {
        f"work_{step}": quote_identifier(f"{out_prefix}__visit_rollup_{step}") for step in visits.WORK_STEPS
    }
    visit_name, map_name = f"{out_prefix}_visit", f"{out_prefix}_visit_map"
    names = visits.RollupNames(
        quote_identifier(staged_visits),
        work,
        quote_identifier(visit_name),
        quote_identifier(map_name),
        output_table_kind="TEMP TABLE",
    )
    result = visits.run_rollup(SparkEngine(spark_tables), names)
    in_duckdb = {
        name: ".".join(map(quote_identifier, ("temp", "main", name))) for name in (visit_name, map_name)
    }
    return dataclasses.replace(result, visit_table=in_duckdb[visit_name], map_table=in_duckdb[map_name])
