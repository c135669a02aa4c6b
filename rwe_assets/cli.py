"""The `rwe` command: run the graph on the bundled sample, ingest what landed, open the UI."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rwe_assets.settings import REPO_DIR, Settings

SAMPLE_DIR = REPO_DIR / "data" / "sample"
# source -> bundled batch folder under data/sample/
SAMPLE_BATCHES = {"ehr_sample": "synthea27", "ehr_sample_fhir": "fhir13"}
# The demo's generated population: small enough to build in a minute, fixed so every demo is the same.
DEMO_PERSONS, DEMO_SEED = 2_000, 42


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:  # its own options: rwe_assets/synthetic/cli.py
        from rwe_assets.synthetic.cli import main as generate_main

        return generate_main(argv[1:])
    parser = argparse.ArgumentParser(prog="rwe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="land the bundled sample and a generated population, build the graph")
    commands.add_parser("generate", help="write a synthetic multi-source population (rwe generate --help)")
    commands.add_parser("ingest", help="ingest every batch waiting in the landing zone")
    ui = commands.add_parser("ui", help="start the Dagster UI (dagster dev) with sensors on")
    ui.add_argument("--port", type=int, default=3000)
    compare = commands.add_parser(
        "compare",
        help="compare two CDM DuckDB files fact by fact, surrogate ids aside; exit 1 if they differ",
    )
    compare.add_argument("cdm_a", type=Path, metavar="A.duckdb")
    compare.add_argument("cdm_b", type=Path, metavar="B.duckdb")
    compare.add_argument(
        "--table",
        action="append",
        dest="tables",
        metavar="TABLE",
        help="compare this table (repeatable); default: all but the vocabulary and cdm_source",
    )
    compare.add_argument("--limit", type=int, default=20, help="differing rows shown per table and side")
    args = parser.parse_args(argv)
    if args.command == "compare":  # reads two files: no settings, no Dagster home
        return _compare(args.cdm_a, args.cdm_b, args.tables, args.limit)
    settings = Settings.from_env()
    _prepare_dagster_home()
    if args.command == "ui":
        return _ui(args.port)
    if args.command == "demo":
        _land_sample(settings)
        _land_generated_population(settings)
    return _ingest(settings)


def _prepare_dagster_home() -> Path:
    """Dagster keeps runs and events in DAGSTER_HOME (default ./.dagster_home, with the repo's
    dagster.yaml: telemetry off, local storage, pool limits)."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(Path(".dagster_home").resolve())
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(REPO_DIR / "dagster.yaml", config)
    return home


def _land_sample(settings: Settings) -> None:
    for source, batch in SAMPLE_BATCHES.items():
        target = settings.landing_dir / source / batch
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(SAMPLE_DIR / batch, target)
            print(f"landed the bundled sample: {target}")


def _land_generated_population(settings: Settings) -> None:
    """Generate the demo population (all four sources, ground truth beside) unless it has landed."""
    from rwe_assets.synthetic import generate

    if (settings.landing_dir / "ehr_site_a").exists():
        return
    staging = settings.data_dir / ".generating"  # hidden: the landing sensor ignores it
    shutil.rmtree(staging, ignore_errors=True)
    report = generate(staging, persons=DEMO_PERSONS, seed=DEMO_SEED)
    for batch in sorted((staging / "landing").glob("*/*")):  # whole batches, each moved by one rename
        target = settings.landing_dir / batch.parent.name / batch.name
        target.parent.mkdir(parents=True, exist_ok=True)
        batch.rename(target)
    shutil.rmtree(settings.data_dir / "truth", ignore_errors=True)
    (staging / "truth").rename(settings.data_dir / "truth")
    shutil.rmtree(staging)
    print(
        f"generated {DEMO_PERSONS} synthetic persons (seed {DEMO_SEED}) into {settings.landing_dir}; "
        f"ground truth in {settings.data_dir / 'truth'} ({report.rows_written} rows)"
    )


def _ingest(settings: Settings) -> int:
    import dagster as dg

    from rwe_assets.definitions import defs
    from rwe_assets.defs.jobs import run_landed_batches
    from rwe_assets.lib.sources import load_registry

    with dg.DagsterInstance.get() as instance:
        outcomes = run_landed_batches(defs, instance, settings.landing_dir, load_registry())
        build = defs.resolve_job_def("build").execute_in_process(instance=instance, raise_on_error=False)
    failed = [key for key, result in outcomes if not result.success]
    if not build.success:
        failed.append("build (staging and downstream)")
    _print_summary(settings, outcomes)
    for key in failed:
        print(f"FAILED: batch {key}; see the run in the Dagster UI for the file and line", file=sys.stderr)
    return 1 if failed else 0


def _print_summary(settings: Settings, outcomes) -> None:
    import duckdb

    from rwe_assets.lib.publish import PUBLISHED
    from rwe_assets.lib.raw_ingest import read_manifest

    manifest = read_manifest(settings.lake_dir)
    print(f"\nbatches run: {len(outcomes)}; files in the ingest manifest: {manifest.num_rows}")
    published = settings.warehouse_dir / PUBLISHED
    if published.exists():
        with duckdb.connect(str(published), read_only=True) as con:
            counts = con.execute(
                "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'cdm' "
                "AND estimated_size > 0 ORDER BY table_name"
            ).fetchall()
            kept_in_raw = con.execute(
                "SELECT staged_table, staged_rows FROM results.reconciliation WHERE cdm_table = 'not_modelled' "
                "ORDER BY staged_rows DESC"
            ).fetchall()
        for table, rows in counts:
            print(f"  cdm.{table}: {rows} rows")
        if kept_in_raw:  # landed and kept, but nothing models them yet: say so, never silently
            listed = ", ".join(f"{name} {rows}" for name, rows in kept_in_raw)
            print(f"\nkept in raw, not modelled ({sum(r for _, r in kept_in_raw)} rows): {listed}")
        print(f"\nOMOP CDM v5.4 database (open read-only): {published}")
        print(f"  duckdb -readonly {published}   or   duckdb.connect('{published}', read_only=True)")
    print(f"lake (Delta: raw, staging, linkage): {settings.lake_dir}")
    print("open the Dagster UI with: make ui   (then http://127.0.0.1:3000)")


def _compare(path_a: Path, path_b: Path, tables: list[str] | None, limit: int) -> int:
    """Print the comparison; 0 when the files hold the same facts, 1 when not, 2 when they cannot be read."""
    import duckdb

    from rwe_assets.errors import RweError
    from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison

    try:
        comparison = compare_cdms(path_a, path_b, tables, limit)
    except (RweError, duckdb.Error) as error:
        print(f"rwe compare: {error}", file=sys.stderr)
        return 2
    print(format_comparison(comparison))
    return 0 if comparison.same else 1


def _ui(port: int) -> int:
    command = ["dagster", "dev", "-w", str(REPO_DIR / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
