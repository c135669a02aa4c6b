"""Achilles-compatible characterization of the CDM, in DuckDB SQL.

OHDSI's Achilles summarizes a CDM as counts and distributions keyed by a standard analysis id
(lib/sql/analytics/achilles/achilles_analysis_details.csv, from the OHDSI/Achilles repository), with up to
five text strata. ATLAS's Data Sources page and ARES read results by those ids, so ours use the same ids,
strata and tables:

- ``results.achilles_results`` (counts) and ``results.achilles_results_dist`` (distributions) with the
  columns of schema_achilles_results.csv / schema_achilles_results_dist.csv; the schema files' ``float``
  is SQL Server's float(53), an 8-byte double, so it becomes DuckDB DOUBLE (DuckDB's FLOAT is 4 bytes).
- ``results.achilles_analysis``: the catalogue itself (every row of the details file), the table Achilles
  writes from the same file.

Every analysis is one SELECT (``ANALYSES`` builds them from a few per-domain templates; each template
keeps the id only if the details file lists it, so no id of ours means something else). Strata follow
Achilles: concept ids and years as text, calendar months as YYYYMM, age deciles as floor(age / 10),
ages as calendar year of the event minus year of birth. Distributions report count, min, max, mean,
sample standard deviation and the 10/25/50/75/90th percentiles, each the smallest value whose cumulative
count reaches that share of the values (Achilles's rule; no interpolation).

Small cells: rows whose count_value is below the minimum cell count (lib/analytics/disclosure.py) are
removed from both result tables before they are written, as Achilles removes them; how many rows each
analysis lost is written to ``results.achilles_suppression`` (counts of cells, never their values).
The three tables are replaced in one transaction, so a reader never sees half a run.

The catalogue is read by ``achilles_catalogue``, the analyses' SQL built by ``achilles_analyses``; this
module runs them, suppresses small cells and writes the tables.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from rwe_assets.lib.analytics.achilles_analyses import Analysis, build_analyses
from rwe_assets.lib.analytics.achilles_catalogue import (
    ACHILLES_VERSION,
    ANALYSIS_COLUMNS,
    ANALYSIS_TABLE,
    DIST_TABLE,
    RESULTS_TABLE,
    SUPPRESSION_TABLE,
    analysis_details,
    schema_columns,
)
from rwe_assets.lib.analytics.disclosure import min_cell_count as configured_min_cell_count
from rwe_assets.lib.analytics.disclosure import suppressed_sql
from rwe_assets.lib.sql_text import quote_identifier, quote_literal

__all__ = ["ACHILLES_VERSION", "AchillesRun", "analysis_details", "build_analyses", "main", "run_achilles"]

PERCENTILES = (("median_value", 0.5), ("p10_value", 0.1), ("p25_value", 0.25))
PERCENTILES += (("p75_value", 0.75), ("p90_value", 0.9))


@dataclass(frozen=True)
class AchillesRun:
    """What a run wrote: the analyses computed and skipped (a table they read is missing), rows kept
    and suppressed per table, the minimum cell count used and seconds per analysis."""

    computed: tuple[int, ...]
    skipped: tuple[int, ...]
    results_rows: int
    dist_rows: int
    suppressed_results_rows: int
    suppressed_dist_rows: int
    min_cell_count: int
    seconds: float
    analysis_seconds: dict[int, float] = field(default_factory=dict)


def run_achilles(
    con: duckdb.DuckDBPyConnection,
    cdm_schema: str = "cdm",
    results_schema: str = "results",
    *,
    min_cell_count: int | None = None,
    analysis_ids: Iterable[int] | None = None,
    source_name: str | None = None,
    today: dt.date | None = None,
) -> AchillesRun:
    """Compute the analyses (default: all of ``build_analyses``) on the CDM in ``cdm_schema`` and replace
    ``<results_schema>.achilles_results``, ``achilles_results_dist``, ``achilles_analysis`` and
    ``achilles_suppression``. Cells below ``min_cell_count`` (default: disclosure.min_cell_count()) are
    dropped and counted."""
    started = time.perf_counter()
    minimum = configured_min_cell_count() if min_cell_count is None else min_cell_count
    wanted = None if analysis_ids is None else set(analysis_ids)
    analyses = [
        a for a in build_analyses(cdm_schema, source_name, today) if wanted is None or a.analysis_id in wanted
    ]
    present = _tables_in(con, cdm_schema)
    runnable = [a for a in analyses if set(a.tables) <= present]
    skipped = tuple(sorted({a.analysis_id for a in analyses} - {a.analysis_id for a in runnable}))
    staging = _create_staging(con)
    seconds: dict[int, float] = {}
    for analysis in runnable:
        began = time.perf_counter()
        con.execute(_insert_sql(analysis, staging))
        seconds[analysis.analysis_id] = seconds.get(analysis.analysis_id, 0.0) + time.perf_counter() - began
    suppressed = _suppress(con, staging, minimum)
    kept = _publish(con, staging, results_schema, suppressed, minimum)
    return AchillesRun(
        computed=tuple(sorted({a.analysis_id for a in runnable})),
        skipped=skipped,
        results_rows=kept[RESULTS_TABLE],
        dist_rows=kept[DIST_TABLE],
        suppressed_results_rows=sum(n for (table, _), n in suppressed.items() if table == RESULTS_TABLE),
        suppressed_dist_rows=sum(n for (table, _), n in suppressed.items() if table == DIST_TABLE),
        min_cell_count=minimum,
        seconds=time.perf_counter() - started,
        analysis_seconds=seconds,
    )


def _tables_in(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    database, _, name = schema.rpartition(".")
    sql = "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?"
    params: list[str] = [name]
    if database:
        sql += " AND database_name = ?"
        params.append(database)
    return {row[0] for row in con.execute(sql, params).fetchall()}


def _create_staging(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Temp tables shaped like the two result tables: runs fill them, suppression edits them."""
    staging = {}
    for table in (RESULTS_TABLE, DIST_TABLE):
        name = f"achilles_staging_{table}"
        columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in schema_columns(table))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
        staging[table] = name
    return staging


def _insert_sql(analysis: Analysis, staging: Mapping[str, str]) -> str:
    strata = [
        f"CAST(stratum_{k} AS VARCHAR)" if k <= analysis.strata else "CAST(NULL AS VARCHAR)"
        for k in range(1, 6)
    ]
    if not analysis.dist:
        return (
            f"INSERT INTO {staging[RESULTS_TABLE]} SELECT {analysis.analysis_id}, {', '.join(strata)}, "
            f"CAST(count_value AS BIGINT) FROM ({analysis.sql}) r"
        )
    keys = [f"stratum_{k}" for k in range(1, analysis.strata + 1)]
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    picks = ", ".join(f"CAST(vs[greatest(1, ceil({q} * n))::INTEGER] AS DOUBLE)" for _, q in PERCENTILES)
    inner = (
        f"SELECT {', '.join([*keys, 'count(v) AS n', 'min(v) AS lo', 'max(v) AS hi', 'avg(v) AS mean', 'stddev_samp(v) AS sd', 'list_sort(list(v)) AS vs'])} "
        f"FROM ({analysis.sql}) r WHERE v IS NOT NULL{group}"
    )
    return (
        f"INSERT INTO {staging[DIST_TABLE]} SELECT {analysis.analysis_id}, {', '.join(strata)}, n, "
        f"CAST(lo AS DOUBLE), CAST(hi AS DOUBLE), CAST(mean AS DOUBLE), CAST(sd AS DOUBLE), {picks} "
        f"FROM ({inner}) d WHERE n > 0"
    )


def _suppress(
    con: duckdb.DuckDBPyConnection, staging: Mapping[str, str], minimum: int
) -> dict[tuple[str, int], int]:
    """Drop the small cells of both staging tables; (table, analysis_id) -> rows dropped."""
    dropped: dict[tuple[str, int], int] = {}
    for table, name in staging.items():
        small = suppressed_sql("count_value", minimum)
        for analysis_id, rows in con.execute(
            f"SELECT analysis_id, count(*) FROM {name} WHERE {small} GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            dropped[(table, analysis_id)] = rows
        con.execute(f"DELETE FROM {name} WHERE {small}")
    return dropped


def _publish(
    con: duckdb.DuckDBPyConnection,
    staging: Mapping[str, str],
    results_schema: str,
    suppressed: Mapping[tuple[str, int], int],
    minimum: int,
) -> dict[str, int]:
    """Replace the result tables in one transaction; rows kept per table."""
    schema = ".".join(quote_identifier(part) for part in results_schema.split("."))
    analysis_cols = ", ".join(f"{quote_identifier(c)} {t}" for c, t in ANALYSIS_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, name in staging.items():
            target = f"{schema}.{quote_identifier(table)}"
            columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in schema_columns(table))
            con.execute(f"CREATE OR REPLACE TABLE {target} ({columns})")
            con.execute(f"INSERT INTO {target} SELECT * FROM {name} ORDER BY ALL")
        con.execute(f"CREATE OR REPLACE TABLE {schema}.{quote_identifier(ANALYSIS_TABLE)} ({analysis_cols})")
        con.executemany(
            f"INSERT INTO {schema}.{quote_identifier(ANALYSIS_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(d.analysis_id, d.name, *(s or None for s in d.strata_names), d.is_default, d.category)
             for d in analysis_details().values()],
        )  # fmt: skip
        target = f"{schema}.{quote_identifier(SUPPRESSION_TABLE)}"
        con.execute(
            f"CREATE OR REPLACE TABLE {target} (result_table VARCHAR, analysis_id INTEGER, "
            "suppressed_rows BIGINT, min_cell_count INTEGER)"
        )
        if suppressed:
            con.executemany(
                f"INSERT INTO {target} VALUES (?, ?, ?, ?)",
                [
                    (table, analysis_id, rows, minimum)
                    for (table, analysis_id), rows in sorted(suppressed.items())
                ],
            )
        kept = {
            table: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for table, name in staging.items()
        }
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for name in staging.values():
        con.execute(f"DROP TABLE IF EXISTS {name}")
    return kept


# --- command line (benchmark) -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rwe_assets.lib.analytics.achilles WAREHOUSE.duckdb``: characterize a CDM file opened
    read-only (results kept in memory) and print rows, seconds, the slowest analyses and the ratio to a
    bare baseline in the same process: one scan of every table the analyses read (count of rows and of
    distinct persons), the least work any characterization does."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m rwe_assets.lib.analytics.achilles", description=main.__doc__
    )
    parser.add_argument("database", help="DuckDB file holding the CDM in schema cdm (opened read-only)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--min-cell-count", type=int, help="default: RWE_MIN_CELL_COUNT or 5")
    args = parser.parse_args(argv)
    with duckdb.connect(":memory:") as con:
        con.execute(f"SET threads = {int(args.threads)}")
        con.execute(f"ATTACH {quote_literal(args.database)} AS src (READ_ONLY)")
        tables = sorted({t for a in build_analyses("src.cdm") for t in a.tables} & _tables_in(con, "src.cdm"))
        started = time.perf_counter()
        rows = sum(
            con.execute(
                f"SELECT count(*), count(DISTINCT person_id) FROM src.cdm.{quote_identifier(t)}"
            ).fetchone()[0]
            if t not in ("cdm_source", "location")
            else 0
            for t in tables
        )
        baseline = time.perf_counter() - started
        run = run_achilles(con, "src.cdm", "results", min_cell_count=args.min_cell_count)
    slowest = sorted(run.analysis_seconds.items(), key=lambda item: -item[1])[:5]
    print(f"tables read: {len(tables)}, rows scanned by the baseline: {rows:,}")
    print(f"baseline (one scan per table): {baseline:.2f}s")
    print(
        f"achilles: {len(run.computed)} analyses in {run.seconds:.2f}s ({run.seconds / baseline:.1f}x the baseline); "
        f"{run.results_rows:,} result rows + {run.dist_rows:,} distribution rows kept, "
        f"{run.suppressed_results_rows + run.suppressed_dist_rows:,} suppressed (minimum cell count {run.min_cell_count})"
    )
    print("slowest: " + ", ".join(f"{analysis_id} {seconds:.2f}s" for analysis_id, seconds in slowest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
