"""Vocabulary at Athena size: what a build pays for it, before and after the vocabulary store.

Writes an Athena-layout folder with the bundled vocab/ rows plus synthetic filler up to Athena's size
(default 2M concepts, 10M relationships, 10M ancestors), then times, in one process:

- bare: DuckDB parsing the same files (read_csv, count) and nothing else: the floor of any load;
- load: lib/vocabulary.load_vocabulary into a fresh CDM schema (what every build did before the store);
- store (cold): ensure_vocabulary_store on a new digest (once per vocabulary version);
- store (warm): ensure_vocabulary_store again (digest only: the files are hashed, not parsed);
- copy: copy_vocabulary from the store into a fresh CDM schema (what every build did next);
- start: start_from_store, a copy of the store's file (what every build does now).

With --persons N it measures what the vocabulary's size costs a build instead: it generates N persons
(seed 42), runs raw ingest, staging and linkage once, then builds the CDM and runs the DQD suite on
the same lake with each vocabulary, one after the other in this process: a first build with the
bundled vocab/ (it creates the persistent id maps, not compared; skipped when the lake of an earlier
run is reused, whose id maps exist), then the bundled vocab/ and the Athena-size folder. Per
vocabulary it prints the store load (cold, once per version),
the CDM step (build_cdm, which copies the vocabulary from the store), the DQD suite, and the ratios
Athena-size / bundled for the CDM step and DQD, with the CDM steps and DQD check types that grew most.

    python bench/vocabulary.py [--concepts 2000000] [--relationships 10000000] [--ancestors 10000000]
                               [--persons 100000 [--workdir DIR] [--memory-limit 8GB] [--threads 2]]

--workdir keeps the generated lake, the Athena-size folder and both builds there and reuses them on the
next run; --dqd-only then runs only DQD on those two builds, alternating --dqd-runs times, and prints
the best total and the best time per check type for each vocabulary.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.genomics.staging import stage_genomics_sources
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.linkage.crosswalk import DEMO_KEY, build_crosswalk, register_staged_persons
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.lib.vocabulary import (
    VOCABULARY_TABLES,
    copy_vocabulary,
    ensure_vocabulary_store,
    load_vocabulary,
    start_from_store,
    vocabulary_file,
)
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate

FILLER_BASE = 2_000_000_000  # above every real OMOP concept id


def write_athena_size(target: Path, concepts: int, relationships: int, ancestors: int) -> None:
    """The bundled vocabulary plus filler rows in CONCEPT, CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR."""
    shutil.copytree(REPO_DIR / "vocab", target)
    filler = {
        "CONCEPT": pl.DataFrame(
            {"concept_id": pl.int_range(FILLER_BASE, FILLER_BASE + concepts, eager=True)}
        ).with_columns(
            ("Filler concept " + pl.col("concept_id").cast(pl.String)).alias("concept_name"),
            pl.lit("Condition").alias("domain_id"),
            pl.lit("SNOMED").alias("vocabulary_id"),
            pl.lit("Clinical Finding").alias("concept_class_id"),
            pl.lit("S").alias("standard_concept"),
            ("F" + pl.col("concept_id").cast(pl.String)).alias("concept_code"),
            pl.lit("20020131").alias("valid_start_date"),
            pl.lit("20991231").alias("valid_end_date"),
            pl.lit("").alias("invalid_reason"),
        ),
        "CONCEPT_RELATIONSHIP": _pairs(relationships, concepts, "concept_id_1", "concept_id_2").with_columns(
            pl.lit("Maps to").alias("relationship_id"),
            pl.lit("20020131").alias("valid_start_date"),
            pl.lit("20991231").alias("valid_end_date"),
            pl.lit("").alias("invalid_reason"),
        ),
        "CONCEPT_ANCESTOR": _pairs(
            ancestors, concepts, "ancestor_concept_id", "descendant_concept_id"
        ).with_columns(
            pl.lit(1).alias("min_levels_of_separation"), pl.lit(1).alias("max_levels_of_separation")
        ),
    }
    for table, frame in filler.items():
        path = target / f"{table}.csv"
        with path.open("a", encoding="utf-8") as handle:  # the bundled header and rows stay first
            frame.write_csv(handle, separator="\t", include_header=False, quote_style="never")


def _pairs(rows: int, concepts: int, first: str, second: str) -> pl.DataFrame:
    index = pl.int_range(0, rows, eager=True)
    return pl.DataFrame(
        {first: FILLER_BASE + index % concepts, second: FILLER_BASE + (index * 7 + 1) % concepts}
    )


def fresh_cdm() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for statement in cdm_ddl("cdm", VOCABULARY_TABLES):
        con.execute(statement)
    return con


def timed(label: str, action) -> float:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"{label:<14} {seconds:8.2f} s   {result}")
    return seconds


def bare_parse(folder: Path) -> int:
    with duckdb.connect() as con:
        return sum(
            con.execute(
                "SELECT count(*) FROM read_csv($p, delim='\t', header=true, quote='', escape='', all_varchar=true)",
                {"p": str(vocabulary_file(folder, table))},
            ).fetchone()[0]
            for table in ("concept", "concept_relationship", "concept_ancestor")
        )


def vocabulary_only(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="rwe_vocab_bench_") as tmp:
        folder = Path(tmp) / "athena"
        started = time.perf_counter()
        write_athena_size(folder, args.concepts, args.relationships, args.ancestors)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
        print(f"wrote {size:.2f} GB of Athena-layout files in {time.perf_counter() - started:.1f} s\n")
        bare = timed("bare parse", lambda: f"{bare_parse(folder):,} rows")
        load = timed("load (old)", lambda: sum(load_vocabulary(fresh_cdm(), folder).values()))
        timed("store (cold)", lambda: ensure_vocabulary_store(folder, Path(tmp) / "stores").created)
        timed("store (warm)", lambda: ensure_vocabulary_store(folder, Path(tmp) / "stores").created)
        store = ensure_vocabulary_store(folder, Path(tmp) / "stores")
        copy = timed("copy (old)", lambda: sum(copy_vocabulary(fresh_cdm(), store.path).values()))
        start = timed("start (now)", lambda: start_from_store(store, Path(tmp) / "build.duckdb"))
        print(
            f"\nper build: load {load:.1f} s -> copy {copy:.1f} s -> start {start:.2f} s; "
            f"load / bare parse = {load / bare:.2f}x, copy / bare parse = {copy / bare:.2f}x"
        )


# --------------------------------------------------------------------------- --persons: a build per vocabulary


def prepare_lake(work: Path, persons: int, memory_limit: str, threads: int) -> tuple[Path, bool]:
    """Generate, ingest, stage and link `persons` once (reused when `work` already holds them).
    Returns the lake and whether it was reused."""
    lake_dir, done = work / "lake", work / "lake.ready"
    if done.exists():
        print(f"reusing the linked lake in {lake_dir}")
        return lake_dir, True
    shutil.rmtree(work / "generated", ignore_errors=True)
    shutil.rmtree(lake_dir, ignore_errors=True)
    started = time.perf_counter()
    landing = work / "generated" / "landing"
    generate(work / "generated", persons, seed=42)
    registry = load_registry()
    for source in registry:
        for batch in list_batches(landing, source.name)[0]:
            ingest_batch(lake_dir, landing, source, batch.batch_id)
    with staging_connection(memory_limit, threads) as con:
        build_staging(lake_dir, registry, con)
    stage_genomics_sources(lake_dir, registry)
    with staging_connection(memory_limit, threads) as con:
        register_staged_persons(con, lake_dir)
        build_crosswalk(con, lake_dir, DEMO_KEY)
    done.touch()
    print(
        f"generated, ingested, staged and linked {persons:,} persons in {time.perf_counter() - started:.0f} s"
    )
    return lake_dir, False


@dataclass
class BuildTimes:
    label: str
    store: float
    store_created: bool
    cdm: float
    dqd: float
    steps: dict[str, float]
    checks: dict[str, float]  # DQD seconds per check type
    dqd_failed: int


def build_and_check(label: str, lake_dir: Path, vocab: Path, warehouse: Path, args) -> BuildTimes:
    """Store load (timed apart), then the CDM step and the DQD suite with that vocabulary."""
    (warehouse / "build.duckdb").unlink(missing_ok=True)
    started = time.perf_counter()
    store = ensure_vocabulary_store(vocab, warehouse / "vocabulary")
    load = time.perf_counter() - started
    print(f"[{label}] CDM build ...", flush=True)
    started = time.perf_counter()
    report = build_cdm(lake_dir, vocab, warehouse, memory_limit=args.memory_limit, threads=args.threads)
    cdm = time.perf_counter() - started
    print(f"[{label}] DQD ...", flush=True)
    return dqd_times(label, warehouse, args, load, store.created, cdm, report.step_seconds)


def dqd_times(label, warehouse: Path, args, store=math.nan, created=False, cdm=math.nan, steps=None):
    dqd, results = run_dqd(warehouse, args)
    failed = sum(r.failed or r.is_error for r in results)
    return BuildTimes(label, store, created, cdm, dqd, steps or {}, check_seconds(results), failed)


def check_seconds(results) -> dict[str, float]:
    """DQD seconds per check type (checks answered by one shared query split its time evenly)."""
    checks: dict[str, float] = defaultdict(float)
    for result in results:
        checks[result.check_name] += result.execution_seconds
    return dict(checks)


def rerun_dqd(times: BuildTimes, warehouse: Path, args) -> None:
    """DQD once more on a built warehouse: keep the best total and the best time per check type."""
    seconds, results = run_dqd(warehouse, args)
    times.dqd = min(times.dqd, seconds)
    for name, spent in check_seconds(results).items():
        times.checks[name] = min(times.checks.get(name, spent), spent)


def run_dqd(warehouse: Path, args) -> tuple[float, list]:
    started = time.perf_counter()
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        con.execute(f"SET threads = {int(args.threads)}")
        results = run_checks(con, "cdm", "results", run_id="bench")
    return time.perf_counter() - started, results


def print_comparison(bundled: BuildTimes, athena: BuildTimes, first: BuildTimes | None) -> None:
    if first is not None and first.store_created:  # the first build loaded the bundled store: its cold load
        bundled.store, bundled.store_created = first.store, True
    print(f"\n{'':26} {'bundled':>10} {'Athena-size':>12} {'ratio':>7}")
    for name, a, b in (
        ("vocabulary store load", bundled.store, athena.store),
        ("CDM step", bundled.cdm, athena.cdm),
        ("DQD (best of --dqd-runs)", bundled.dqd, athena.dqd),
    ):
        if not math.isnan(a):  # --dqd-only times no store load nor CDM step
            print(f"{name:<26} {a:9.1f}s {b:11.1f}s {b / a:6.2f}x")
    first_note = (
        ""
        if first is None
        else f"first build (creates id maps): CDM {first.cdm:.1f} s, DQD {first.dqd:.1f} s; "
    )
    print(
        f"(store loads: bundled {'cold' if bundled.store_created else 'warm, reused'}, Athena-size "
        f"{'cold' if athena.store_created else 'warm, reused'}; {first_note}failed or error DQD checks "
        f"{bundled.dqd_failed} bundled, {athena.dqd_failed} Athena-size)"
    )
    for title, a, b in (
        ("CDM steps", bundled.steps, athena.steps),
        ("DQD check types", bundled.checks, athena.checks),
    ):
        grown = sorted(a, key=lambda k: b.get(k, 0) - a[k], reverse=True)[:6]
        print(f"\n{title} that grew most (bundled -> Athena-size, s):")
        for key in grown:
            print(f"  {key:<40} {a[key]:7.2f} -> {b.get(key, 0):7.2f}")


def with_persons(args: argparse.Namespace) -> None:
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="rwe_vocab_bench_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # in-memory DuckDB spills to ./.tmp: keep it in the scratch dir
    print(f"work dir {work}; load average before {os.getloadavg()}")
    if args.dqd_only:  # the two builds of an earlier run with this --workdir: DQD alone, alternating
        bundled = dqd_times("bundled", work / "warehouse_bundled", args)
        athena = dqd_times("Athena-size", work / "warehouse_athena", args)
        alternate_dqd(work, bundled, athena, args)
        print_comparison(bundled, athena, None)
        return
    folder = work / "athena"
    if not (work / "athena.ready").exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_athena_size(folder, args.concepts, args.relationships, args.ancestors)
        (work / "athena.ready").touch()
    lake_dir, reused = prepare_lake(
        work / f"persons_{args.persons}", args.persons, args.memory_limit, args.threads
    )
    bundled_vocab, first = REPO_DIR / "vocab", None
    if not reused:  # a new lake: the first build creates the id maps, which later builds only read
        first = build_and_check("bundled, first", lake_dir, bundled_vocab, work / "warehouse_bundled", args)
    bundled = build_and_check("bundled", lake_dir, bundled_vocab, work / "warehouse_bundled", args)
    athena = build_and_check("Athena-size", lake_dir, folder, work / "warehouse_athena", args)
    alternate_dqd(work, bundled, athena, args)
    print_comparison(bundled, athena, first)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


def alternate_dqd(work: Path, bundled: BuildTimes, athena: BuildTimes, args) -> None:
    for _ in range(args.dqd_runs - 1):  # again, alternating: the machine's load varies between runs
        rerun_dqd(bundled, work / "warehouse_bundled", args)
        rerun_dqd(athena, work / "warehouse_athena", args)
    what = f"{args.persons:,} persons" if args.persons else f"the builds in {work}"
    print(f"\n=== {what}; load average after {os.getloadavg()} ===")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, default=2_000_000)
    parser.add_argument("--relationships", type=int, default=10_000_000)
    parser.add_argument("--ancestors", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, help="time the CDM step and DQD at this population instead")
    parser.add_argument("--workdir", type=Path, help="with --persons: keep and reuse the data here")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit (default 8GB)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument(
        "--dqd-runs", type=int, default=3, help="with --persons: DQD runs per vocabulary (best)"
    )
    parser.add_argument(
        "--dqd-only",
        action="store_true",
        help="with --workdir of an earlier --persons run: only DQD on its two builds, alternating",
    )
    args = parser.parse_args()
    if args.dqd_only and not args.workdir:
        parser.error("--dqd-only needs the --workdir of an earlier --persons run")
    if args.persons or args.dqd_only:
        with_persons(args)
    else:
        vocabulary_only(args)


if __name__ == "__main__":
    main()
