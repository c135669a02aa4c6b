"""The accounting of a staging run: every raw row of a staged entity is staged, quarantined, merged or
retired (lib/staging/build.py, module docstring), counted per table, source and raw entity.

A full build counts its candidates and their outcomes as it goes (add_counts); an incremental run, which
holds only part of them, counts the tables it wrote instead (count_tables), which hold the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.staging.lifecycle import IS_STATUS
from rwe_assets.lib.staging.model import TABLES

OUTCOMES = {"_quarantine": "quarantined", "_merged": "merged", "_retired": "retired"}


@dataclass(frozen=True)
class Reconciliation:
    table: str
    source_system: str
    source_entity: str
    raw_rows: int
    staged: int
    quarantined: int
    merged: int
    retired: int = 0  # versions the source withdrew or a newer batch left out (lib/staging/lifecycle.py)
    fanout: int = 0  # extra rows from raw rows that stage as several rows (FHIR Observation components)

    @property
    def unaccounted(self) -> int:
        return self.raw_rows + self.fanout - self.staged - self.quarantined - self.merged - self.retired


@dataclass(frozen=True)
class StagingReport:
    row_counts: dict[str, int]
    reconciliation: list[Reconciliation]
    quarantine_reasons: dict[tuple[str, str], int]  # (table, reason) -> rows
    retired_reasons: dict[tuple[str, str], int]  # (table, reason) -> rows
    not_modelled: dict[tuple[str, str], int]  # (source, raw entity or FHIR resource type) -> raw rows
    mode: str = "full"  # 'full', 'incremental' or 'unchanged' (lib/staging/incremental_state.py)
    reason: str = ""  # why that mode
    touched: dict[str, int] | None = None  # staging table -> rows this run changed (None: a full build)


def create_totals(con: duckdb.DuckDBPyConnection) -> None:
    """The counts of every source, added to as each is staged (small: a row per table, source and
    raw entity or reason)."""
    con.execute(
        "CREATE OR REPLACE TABLE not_modelled (source_system VARCHAR, source_entity VARCHAR, raw_rows BIGINT)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE raw_counts (tbl VARCHAR, src VARCHAR, entity VARCHAR, raw_rows BIGINT)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE outcome_counts (tbl VARCHAR, src VARCHAR, entity VARCHAR, staged BIGINT, "
        "quarantined BIGINT, merged BIGINT, retired BIGINT, fanout BIGINT)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE reason_counts (outcome VARCHAR, staging_table VARCHAR, reason_code VARCHAR, "
        "n BIGINT)"
    )


def add_counts(con, raw_counts: list[tuple[str, str, str, int]]) -> None:
    if raw_counts:
        con.executemany("INSERT INTO raw_counts VALUES (?, ?, ?, ?)", raw_counts)
    # One pass over each candidate table and its outcomes gives every count: the staged rows of a table
    # are its 'staged' counts summed (what staged_<table> holds), the reconciliation joins them to the
    # raw counts.
    con.execute(f"INSERT INTO outcome_counts {_outcome_counts_sql()}")
    for outcome in ("quarantined", "merged", "retired"):
        con.execute(f"INSERT INTO reason_counts SELECT '{outcome}', * FROM ({_reasons_sql(outcome)})")


def report(con, lake_dir: Path, mode: str = "full", reason: str = "") -> StagingReport:
    staged = dict(con.execute("SELECT tbl, sum(staged) FROM outcome_counts GROUP BY ALL").fetchall())
    # The row counts reported are those of the tables written, checked against the accounting above.
    row_counts = {t.name: _written_rows(lake_dir, t.name) for t in TABLES}
    for name, written in row_counts.items():
        if written != int(staged.get(name) or 0):
            raise ReconciliationError(
                f"staging/{name}: {written} rows written, {int(staged.get(name) or 0)} accounted as staged"
            )
    rows = con.execute(
        """
        SELECT r.tbl, r.src, r.entity, r.raw_rows,
               coalesce(o.staged, 0), coalesce(o.quarantined, 0), coalesce(o.merged, 0), coalesce(o.retired, 0),
               coalesce(o.fanout, 0)
        FROM raw_counts r LEFT JOIN outcome_counts o
          ON o.tbl = r.tbl AND o.src = r.src AND o.entity = r.entity
        ORDER BY ALL
        """
    ).fetchall()
    return StagingReport(
        row_counts=row_counts,
        reconciliation=[Reconciliation(*row) for row in rows],
        quarantine_reasons=_reasons(con, "quarantined"),
        retired_reasons=_reasons(con, "retired"),
        not_modelled={(src, e): n for src, e, n in con.execute("SELECT * FROM not_modelled").fetchall()},
        mode=mode,
        reason=reason,
    )


def _written_rows(lake_dir: Path, name: str) -> int:
    return lake.open_table(lake.table_path(lake_dir, "staging", name)).to_pyarrow_dataset().count_rows()


def _reasons(con, outcome: str) -> dict[tuple[str, str], int]:
    sql = "SELECT staging_table, reason_code, sum(n) FROM reason_counts WHERE outcome = ? GROUP BY ALL"
    return {(t, r): int(n) for t, r, n in con.execute(sql, [outcome]).fetchall()}


def _reasons_sql(outcome: str) -> str:
    """Rows per (table, reason) of one outcome, as _rejected_sql(outcome) holds them, counted from the
    candidates' own failures (quarantine only) and the outcomes alone (an outcome row names exactly one
    candidate)."""
    parts = []
    for table in TABLES:
        if outcome == "quarantined":
            parts.append(
                f"SELECT '{table.name}' AS staging_table, _reason AS reason_code FROM cand_{table.name} c "
                f"WHERE _reason IS NOT NULL AND NOT {IS_STATUS}"
            )
        parts.append(
            f"SELECT '{table.name}' AS staging_table, reason AS reason_code FROM {table.name}_outcome "
            f"WHERE outcome = '{outcome}'"
        )
    return f"SELECT staging_table, reason_code, count(*) FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"


def _outcome_counts_sql() -> str:
    parts = []
    for table in TABLES:
        parts.append(
            f"""
            SELECT '{table.name}' AS tbl, c.source_system AS src, c._source_entity AS entity,
                   count(*) FILTER (WHERE c._reason IS NULL AND o.outcome IS NULL) AS staged,
                   count(*) FILTER (WHERE o.outcome = 'quarantined' OR (o.outcome IS NULL AND c._reason IS NOT NULL))
                       AS quarantined,
                   count(*) FILTER (WHERE o.outcome = 'merged') AS merged,
                   count(*) FILTER (WHERE o.outcome = 'retired') AS retired,
                   count(*) - count(DISTINCT (c._source_file, c._line_number)) AS fanout
            FROM cand_{table.name} c LEFT JOIN {table.name}_outcome o ON o.row_id = c.rowid
            GROUP BY ALL
            """
        )
    return " UNION ALL ".join(parts)


def count_tables(con: duckdb.DuckDBPyConnection, lake_dir) -> None:
    """outcome_counts, reason_counts and not_modelled from the staging tables as written (raw_counts
    is counted from raw by the caller): each staged or rejected row is one outcome of one raw row."""
    audit = {}
    for name in OUTCOMES:
        audit[name] = lake.register_parquet_view(
            con, f"acc{name}", lake.table_path(lake_dir, "staging", name)
        )
    for table in TABLES:
        lake.register_parquet_view(con, "acc_staged", lake.table_path(lake_dir, "staging", table.name))
        parts = [
            "SELECT source_system, _source_entity, _source_file, _line_number, 'staged' AS outcome FROM acc_staged"
        ]
        parts += [
            f"SELECT source_system, _source_entity, _source_file, _line_number, '{outcome}' FROM acc{name} "
            f"WHERE staging_table = '{table.name}'"
            for name, outcome in OUTCOMES.items()
            if audit[name]
        ]
        con.execute(
            f"""
            INSERT INTO outcome_counts
            SELECT '{table.name}', source_system, _source_entity,
                   count(*) FILTER (WHERE outcome = 'staged'), count(*) FILTER (WHERE outcome = 'quarantined'),
                   count(*) FILTER (WHERE outcome = 'merged'), count(*) FILTER (WHERE outcome = 'retired'),
                   count(*) - count(DISTINCT (_source_file, _line_number))
            FROM ({" UNION ALL ".join(parts)}) GROUP BY ALL
            """
        )
    for name, outcome in OUTCOMES.items():
        if audit[name]:
            con.execute(
                f"INSERT INTO reason_counts SELECT '{outcome}', staging_table, reason_code, count(*) "
                f"FROM acc{name} GROUP BY ALL"
            )
