"""The publish gate: which data-quality failures stop a build from reaching analysts.

Structural checks say the database is not a valid CDM (a table or field missing, a wrong type, a
duplicate primary key, a dangling foreign key, a NULL in a required field); any failure of one blocks
publishing. Every other DQD check (plausibility, completeness, conformance of values) is reported, with
its threshold, but does not block: those describe the data, and the data are what the sources sent.
"""

from __future__ import annotations

import duckdb

STRUCTURAL_CHECKS = ("cdmTable", "cdmField", "cdmDatatype", "isPrimaryKey", "isForeignKey", "isRequired")


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[tuple[str, int]]:
    """(check_id, violated rows) of the structural checks that failed or errored in the latest DQ run
    recorded in results.dq_check_results (or in `run_id`)."""
    run = run_id or con.execute("SELECT max(run_id) FROM results.dq_check_results").fetchone()[0]
    return con.execute(
        """
        SELECT check_id, coalesce(num_violated_rows, -1) FROM results.dq_check_results
        WHERE run_id = $run AND check_name IN (SELECT unnest($names)) AND (failed OR is_error)
        ORDER BY check_id
        """,
        {"run": run, "names": list(STRUCTURAL_CHECKS)},
    ).fetchall()
