"""The publish gate: which data-quality failures stop a build from reaching analysts, and which DQD run
is the latest.

Structural checks say the database is not a valid CDM (a table or field missing, a wrong type, a
duplicate primary key, a dangling foreign key, a NULL in a required field); any failure of one blocks
publishing. Every other DQD check (plausibility, completeness, conformance of values) is reported, with
its threshold, but does not block: those describe the data, and the data are what the sources sent.

The latest run is the one that started last (``run_at``), the one definition the gate and the per-table
asset checks (defs/quality/table_checks.py) both use. Run ids are not ordered: the Dagster run id is a
random UUID, so max(run_id) picks a run at random.
"""

from __future__ import annotations

import duckdb

STRUCTURAL_CHECKS = ("cdmTable", "cdmField", "cdmDatatype", "isPrimaryKey", "isForeignKey", "isRequired")
RESULTS = "results.dq_check_results"


def latest_run_id(con: duckdb.DuckDBPyConnection, results: str = RESULTS) -> str | None:
    """The run id of the DQD run in `results` that started last (None when it holds none). Two runs
    started in the same microsecond are ordered by run id, so the answer is still one run."""
    row = con.execute(f"SELECT run_id FROM {results} ORDER BY run_at DESC, run_id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[tuple[str, int]]:
    """(check_id, violated rows) of the structural checks that failed or errored in the latest DQ run
    recorded in results.dq_check_results (or in `run_id`)."""
    run = run_id or latest_run_id(con)
    return con.execute(
        f"""
        SELECT check_id, coalesce(num_violated_rows, -1) FROM {RESULTS}
        WHERE run_id = $run AND check_name IN (SELECT unnest($names)) AND (failed OR is_error)
        ORDER BY check_id
        """,
        {"run": run, "names": list(STRUCTURAL_CHECKS)},
    ).fetchall()
