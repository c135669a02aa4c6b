"""Cohorts, incidence and Kaplan-Meier at scale: the demo CDM replicated N times (person and event ids
offset), then each bundled cohort, the incidence table and the KM analysis timed, beside a bare
baseline in the same process (one scan of the tables a cohort reads).

    .venv/bin/python bench/cohorts.py <demo build.duckdb> <work dir> [copies=50]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import duckdb

from rwe_assets.defs.analytics.cohorts import COHORT_DIR
from rwe_assets.lib.analytics.cohorts import cohort_files, load_cohort, write_cohort
from rwe_assets.lib.analytics.survival import (
    POPULATION,
    incidence_persons,
    incidence_table,
    kaplan_meier,
    survival_frame,
    write_incidence,
    write_km,
)

PERSON_OFFSET = 1_000_000
EVENT_OFFSET = 10_000_000
# table -> id columns offset with the events (person_id is offset separately)
TABLES = {
    "person": [],
    "observation_period": ["observation_period_id"],
    "condition_occurrence": ["condition_occurrence_id"],
    "drug_exposure": ["drug_exposure_id"],
    "procedure_occurrence": ["procedure_occurrence_id"],
    "measurement": ["measurement_id"],
    "observation": ["observation_id"],
    "visit_occurrence": ["visit_occurrence_id"],
    "specimen": ["specimen_id"],
    "variant_occurrence": ["variant_occurrence_id", "specimen_id"],
}


def replicate(con: duckdb.DuckDBPyConnection, copies: int) -> dict[str, int]:
    for table, ids in TABLES.items():
        biggest = con.execute(f"SELECT max(person_id) FROM cdm.{table}").fetchone()[0] or 0
        assert biggest < PERSON_OFFSET, table
        for column in ids:
            assert (con.execute(f"SELECT max({column}) FROM cdm.{table}").fetchone()[0] or 0) < EVENT_OFFSET
        replaced = ", ".join(
            [f"person_id + k * {PERSON_OFFSET} AS person_id"]
            + [f"{c} + k * {EVENT_OFFSET} AS {c}" for c in ids]
        )
        con.execute(
            f"INSERT INTO cdm.{table} SELECT * EXCLUDE (k) REPLACE ({replaced}) "
            f"FROM cdm.{table}, range(1, {copies}) r(k)"
        )
    return {t: con.execute(f"SELECT count(*) FROM cdm.{t}").fetchone()[0] for t in TABLES}


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    return value, seconds


def main(source: Path, work: Path, copies: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "build.duckdb"
    shutil.copy(source, db)
    con = duckdb.connect(
        str(db), config={"threads": 2, "memory_limit": "6GB", "preserve_insertion_order": False}
    )
    counts, seconds = timed("replicate", lambda: replicate(con, copies))
    print(
        f"replicated x{copies} in {seconds:.1f} s: persons {counts['person']:,}, rows {sum(counts.values()):,}"
    )
    for table, n in counts.items():
        print(f"  cdm.{table}: {n:,}")
    baseline_sql = " UNION ALL ".join(
        f"SELECT count(*), count(DISTINCT person_id) FROM cdm.{t}" for t in TABLES if t != "person"
    )
    _, base = timed("baseline", lambda: con.execute(baseline_sql).fetchall())
    print(f"baseline (one scan of every table a cohort reads, count + distinct persons): {base:.2f} s")
    for path in cohort_files(COHORT_DIR):
        definition = load_cohort(path)
        result, seconds = timed(path.name, lambda d=definition: write_cohort(con, d))
        print(
            f"cohort {definition.cohort_definition_id} ({path.name}): {result.rows:,} rows, "
            f"{result.persons:,} persons, {seconds:.2f} s ({seconds / base:.1f}x baseline)"
        )

    def incidence():
        table = incidence_table(incidence_persons(con, POPULATION, 503))
        return write_incidence(con, POPULATION, 503, table, 5)

    _, seconds = timed("incidence", incidence)
    print(f"incidence (everyone observed, outcome 503): {seconds:.2f} s ({seconds / base:.1f}x baseline)")

    def km():
        frame = survival_frame(con, 788, 9001)
        result = kaplan_meier(frame, ("carriers", "others"), "bench", "age (years)", min_group=5)
        write_km(con, "bench", result, 5, work / "plots")
        return frame.height

    persons, seconds = timed("km", km)
    print(
        f"Kaplan-Meier + log-rank + plot over {persons:,} persons: {seconds:.2f} s ({seconds / base:.1f}x baseline)"
    )
    con.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 50)
