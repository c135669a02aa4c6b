"""Linkage benchmark: pairs compared per second, total time and peak RSS beside precision/recall/F1,
blocking recall (true pairs that reach comparison) and persons merging twins or household members.

Records: the generator's four person files for --persons people (default noise), replicated until
--records is reached. Replica k is a disjoint population: its source ids carry the prefix rk-, birth
dates move 400*k days back (moved forward, newborns landed in the future, where a birth date is
impossible and dropped) and SSNs, phones and house numbers by k, so replicas share the name
distribution (blocks grow as in a larger population) but no person. Truth is replicated alike.

    .venv/bin/python bench/linkage.py --records 100000 1000000 [--persons 20000] [--memory 2GB]
        [--profile] [--population DIR] [--keep-lake DIR]

Each line is followed by the CPU seconds of link() and the load average before and after it.
--profile prints the wall and CPU seconds of each step of link() (tokens, training, scoring, prior, decisions,
clusters, ids, quality, writing); --population keeps the generated population in DIR and reuses it on
the next run (generation takes a minute and is not what is measured); --keep-lake keeps the linkage
tables written (lake_<records>/linkage/...) for inspection.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb

from rwe_assets.lib.linkage.crosswalk import link
from rwe_assets.lib.linkage.generated import register_person_pii

KEY = "benchmark-linkage-key-not-secret"
# Steps of link() timed by --profile: (module, function, label).
STEPS = (
    ("crosswalk", "tokenize", "tokens"),
    ("model", "term_frequencies", "term frequencies"),
    ("model", "train", "training"),
    ("model", "score", "scoring"),
    ("model", "refine_prior", "prior"),
    ("cluster", "decide", "decisions"),
    ("crosswalk", "_merge_pairs", "merge pairs"),
    ("cluster", "connected_components", "clusters"),
    ("cluster", "assign_person_ids", "person ids"),
    ("quality", "metrics_table", "quality"),
    ("crosswalk", "_write", "writing"),
)


@contextlib.contextmanager
def profiled(times: dict[str, list[float]]):
    """Wrap the STEPS functions so that each call adds its wall and CPU seconds (of the whole process,
    all threads: steadier than wall on a shared machine) to times[label]."""
    from rwe_assets.lib.linkage import cluster, crosswalk, model, quality

    modules = {"crosswalk": crosswalk, "model": model, "cluster": cluster, "quality": quality}
    saved = []
    for module_name, name, label in STEPS:
        module = modules[module_name]
        original = getattr(module, name)

        def timed(*args, _f=original, _label=label, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                wall_cpu = times.setdefault(_label, [0.0, 0.0])
                wall_cpu[0] += time.perf_counter() - start
                wall_cpu[1] += time.process_time() - cpu

        saved.append((module, name, original))
        setattr(module, name, timed)
    try:
        yield times
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def replicate(con: duckdb.DuckDBPyConnection, records: int) -> int:
    """TEMP TABLE person_pii with `records` rows from base_pii, and lk_truth beside it."""
    base = con.execute("SELECT count(*) FROM base_pii").fetchone()[0]
    copies = -(-records // base)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE person_pii AS
        SELECT * REPLACE (
            CASE WHEN k = 0 THEN source_person_id ELSE 'r' || k || '-' || source_person_id END AS source_person_id,
            CAST(CAST(coalesce(try_strptime(birth_date, '%Y-%m-%d'), try_strptime(birth_date, '%Y%m%d')) AS DATE)
                 - CAST(400 * k AS INTEGER) AS VARCHAR) AS birth_date,
            CASE WHEN ssn IS NULL OR k = 0 THEN ssn
                 ELSE lpad(CAST((CAST(regexp_replace(ssn, '[^0-9]', '', 'g') AS BIGINT) + 7919 * k) % 1000000000
                      AS VARCHAR), 9, '9') END AS ssn,
            CASE WHEN phone IS NULL OR k = 0 THEN phone ELSE CAST(5550000000 + 1009 * k + hash(phone) % 9999999
                 AS VARCHAR) END AS phone,
            CASE WHEN k = 0 THEN address_line ELSE CAST(k AS VARCHAR) || address_line END AS address_line)
        FROM base_pii, range({copies}) r(k)
        ORDER BY k, source_system, source_person_id, _batch_id  -- the same rows on every run
        LIMIT {records}
        """
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE bench_truth AS
        SELECT CASE WHEN k = 0 THEN record_id ELSE split_part(record_id, '|', 1) || '|r' || k || '-'
                    || split_part(record_id, '|', 2) END AS record_id, true_id || '-' || k AS true_id,
               household_id || '-' || k AS household_id, twin_of || '-' || k AS twin_of
        FROM lk_truth, range({copies}) r(k)"""
    )
    return con.execute("SELECT count(*) FROM person_pii").fetchone()[0]


def run(args, records: int, work: Path, pop: Path) -> dict:
    con = duckdb.connect(config={"memory_limit": args.memory, "threads": args.threads})
    con.execute("SET enable_progress_bar = false")
    register_person_pii(con, pop, "base_pii")
    from rwe_assets.lib.linkage.quality import register_generator_truth

    register_generator_truth(con, pop / "truth")
    n = replicate(con, records)
    con.execute("CREATE OR REPLACE TEMP TABLE lk_truth AS SELECT * FROM bench_truth")
    con.execute("DROP TABLE base_pii")
    lake_dir = (args.keep_lake or work) / f"lake_{records}"
    times: dict[str, list[float]] = {}
    load = [_load()]
    with profiled(times) if args.profile else contextlib.nullcontext():
        start, cpu = time.perf_counter(), time.process_time()
        result = link(con, lake_dir, KEY, truth_dir=None)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    load.append(_load())
    from rwe_assets.lib.linkage.quality import blocking_recall, pair_scores

    scores = {**pair_scores(con), **blocking_recall(con)}
    return {
        "records": n,
        "seconds": seconds,
        "cpu": cpu,
        "load": load,
        "pairs": result.counts["pairs_scored_this_run"],
        "trained": result.trained,
        "times": times,
        **scores,
    }


def _load() -> str:
    """The 1-minute load average: on a shared machine wall seconds mean little without it."""
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split()[0]
    return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--persons", type=int, default=20_000, help="generated population to replicate")
    parser.add_argument("--memory", default="2GB", help="DuckDB memory_limit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true", help="print the seconds of each step of link()")
    parser.add_argument("--population", type=Path, help="keep the generated population here and reuse it")
    parser.add_argument(
        "--keep-lake", type=Path, help="write the linkage tables under this directory and keep them"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_linkage_") as tmp:
        work = Path(tmp)
        pop = population(args, work)
        print(f"{'records':>10} {'pairs':>12} {'total s':>8} {'pairs/s':>10} {'peak RSS MiB':>12} "
              f"{'precision':>9} {'recall':>7} {'F1':>7} {'blocking':>8} {'merged twins/household':>22}  model")  # fmt: skip
        for records in args.records:
            row = run(args, records, work, pop)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{row['records']:>10,} {row['pairs']:>12,.0f} {row['seconds']:>8.1f} "
                f"{row['pairs'] / row['seconds']:>10,.0f} {rss:>12,.0f} {row['precision']:>9.4f} "
                f"{row['recall']:>7.4f} {row['f1']:>7.4f} {row['blocking_recall']:>8.4f} "
                f"{row['persons_merging_twins']:>10,.0f}/{row['persons_merging_household_members']:<11,.0f}  "
                f"{'trained' if row['trained'] else 'priors'}",
                flush=True,
            )
            # CPU seconds of the linking process (all its threads): less sensitive to other jobs' load
            print(f"  cpu {row['cpu']:.1f} s, load average {row['load'][0]} -> {row['load'][1]}", flush=True)
            if args.profile:
                print(
                    "  steps (wall/cpu s): "
                    + ", ".join(f"{k} {w:.1f}/{c:.1f}" for k, (w, c) in row["times"].items()),
                    flush=True,
                )
    return 0


def population(args, work: Path) -> Path:
    """The generated population's directory: --population/p<persons>_s<seed> when it holds one (it is
    generated there otherwise), else work/population."""
    from rwe_assets.synthetic import generate

    target = work / "population"
    if args.population is not None:
        target = args.population / f"p{args.persons}_s{args.seed}"
        if (target / "truth" / "report.json").is_file():
            print(f"population reused from {target}")
            return target
    # The generator runs in a child process: its heap (1.5-2 GB, not returned to the system) was
    # counted in the linkage's peak RSS. Its own peak is printed apart.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(generate, target, persons=args.persons, seed=args.seed).result()
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"generator (child process) peak RSS {child:,.0f} MiB; peak RSS below: the linkage process")
    return target


if __name__ == "__main__":
    sys.exit(main())
