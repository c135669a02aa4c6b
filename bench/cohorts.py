"""What the analytics assets add to a build: characterization (Achilles), the DQD JSON export, each
bundled cohort, the incidence table and each Kaplan-Meier analysis, timed one after the other on a
copy of a CDM file, beside a bare baseline in the same process (one scan of the tables a cohort
reads) and, when the build's own time is given, as a share of it.

    .venv/bin/python bench/cohorts.py <CDM .duckdb> <work dir> [--build-seconds S] [--copies N]
                                      [--memory-limit 6GB]

The CDM is a build of a generated population (bench/pipeline.py --persons 100000 --keep leaves one
at <scratch>/persons_100000/warehouse/build.duckdb; its report's total is the build time) or the
demo's; --copies N replicates it N times with person and event ids offset (counts multiplied by N:
it measures time, not suppression). The work dir gets the copy and the KM plots.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from rwe_assets.lib.analytics.achilles import run_achilles
from rwe_assets.lib.analytics.cohorts import cohort_files, load_cohort, write_cohort
from rwe_assets.lib.analytics.disclosure import shown
from rwe_assets.lib.analytics.dqd_export import write_dqd_json
from rwe_assets.lib.analytics.survival import (
    DEFAULT_KM_ANALYSES,
    POPULATION,
    incidence_persons,
    incidence_table,
    run_km,
    write_incidence,
)
from rwe_assets.settings import REPO_DIR

COHORT_DIR = REPO_DIR / "rwe_assets" / "cohorts"
MIN_CELL = 5
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


def replicate(con: duckdb.DuckDBPyConnection, copies: int) -> None:
    """The cohort tables copies-1 more times, ids offset (variant_annotation is not copied: a copied
    call has no significance, so gene-level carrier counts stay those of the original)."""
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


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def steps(con: duckdb.DuckDBPyConnection, work: Path) -> list[tuple[str, Callable[[], str]]]:
    """(label, work returning a short note) for every analytics asset's work, in build order."""

    def achilles() -> str:
        run = run_achilles(con, "cdm", "results", min_cell_count=MIN_CELL)
        return f"{len(run.computed)} analyses"

    def dqd_json() -> str:
        if not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'results' AND table_name = 'dq_check_results'"
        ).fetchone()[0]:
            return "skipped: no results.dq_check_results"
        return f"{write_dqd_json(con, work / 'dq_results.json', min_cell_count=MIN_CELL).checks:,} checks"

    def cohort(path: Path) -> Callable[[], str]:
        def run() -> str:
            result = write_cohort(con, load_cohort(path))
            return f"{result.persons:,} persons"

        return run

    def incidence() -> str:
        table = incidence_table(incidence_persons(con, POPULATION, 503))
        write_incidence(con, POPULATION, 503, table, MIN_CELL)
        return "503 in everyone observed"

    def km(analysis) -> Callable[[], str]:
        def run() -> str:
            result, persons, _ = run_km(con, analysis, MIN_CELL, work / "plots")
            small = f"<{MIN_CELL}"  # as the shared results show them
            groups = ", ".join(
                f"{g} {n if shown(n, MIN_CELL) else small}/{e if shown(e, MIN_CELL) else small}"
                for g, n, e, _ in result.summary.iter_rows()
            )
            return f"{persons:,} persons (persons/events: {groups}), log-rank p {result.logrank_p:.2g}"

        return run

    paths = cohort_files(COHORT_DIR)
    return [
        ("characterization (Achilles)", achilles),
        ("DQD JSON export", dqd_json),
        *((f"cohort {load_cohort(p).cohort_definition_id} ({p.name})", cohort(p)) for p in paths),
        ("incidence", incidence),
        *((f"KM {a.name}", km(a)) for a in DEFAULT_KM_ANALYSES),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "cdm", type=Path, help="a DuckDB file with the CDM in schema cdm (copied, not changed)"
    )
    parser.add_argument("work", type=Path, help="scratch dir: the copy, the plots")
    parser.add_argument("--build-seconds", type=float, help="the build's own time, for the shares")
    parser.add_argument("--copies", type=int, default=1, help="replicate the CDM this many times")
    parser.add_argument("--memory-limit", default="6GB", help="DuckDB memory_limit (default 6GB)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db = args.work / "build.duckdb"
    shutil.copy(args.cdm, db)
    con = duckdb.connect(
        str(db), config={"threads": 2, "memory_limit": args.memory_limit, "preserve_insertion_order": False}
    )
    if args.copies > 1:
        _, seconds = timed(lambda: replicate(con, args.copies))
        print(f"replicated x{args.copies} in {seconds:.1f} s")
    counts = {t: con.execute(f"SELECT count(*) FROM cdm.{t}").fetchone()[0] for t in TABLES}
    print(f"persons {counts['person']:,}; rows in the tables cohorts read {sum(counts.values()):,}")
    baseline_sql = " UNION ALL ".join(
        f"SELECT count(*), count(DISTINCT person_id) FROM cdm.{t}" for t in TABLES if t != "person"
    )
    _, base = timed(lambda: con.execute(baseline_sql).fetchall())
    build = args.build_seconds
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; baseline (one scan) {base:.2f} s")
    print(f"{'step':<52} {'seconds':>8} {'x base':>7} {'% build':>8}  note")
    total = 0.0
    for label, fn in steps(con, args.work):
        note, seconds = timed(fn)
        total += seconds
        share = f"{100 * seconds / build:.2f}" if build else "-"
        print(f"{label:<52} {seconds:>8.2f} {seconds / base:>7.1f} {share:>8}  {note}", flush=True)
    share = f"{100 * total / build:.1f}% of the {build:.0f} s build" if build else "no build time given"
    print(f"{'all analytics':<52} {total:>8.2f} {total / base:>7.1f}  ({share})")
    con.close()


if __name__ == "__main__":
    main()
