"""The `rwe` command: run the graph on the bundled sample, ingest what landed, open the UI.

Every tool it starts is started from this interpreter (`sys.executable -m dagster`, the DuckDB CLI
installed beside it), and every command it prints is a full path or a `make` target, so what it says
works from a plain shell where the virtual environment is not on PATH.

This module parses the command line and dispatches; each command's work is in the package's modules
(demo, data_dir, ingest, progress) or, for the commands in COMMAND_MODULES, in lib/.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

from rwe_assets.cli.data_dir import (
    clean_data_dir,
    duckdb_cli,
    init_keys,
    open_sql,
    prepare_dagster_home,
    published_path,
    report_landing,
)
from rwe_assets.cli.demo import (
    DEMO_PERSONS,
    SAMPLE_BATCHES,
    SAMPLE_DIR,
    land_generated_population,
    land_sample,
)
from rwe_assets.cli.exit_codes import FAILED, REFUSED
from rwe_assets.cli.ingest import execute_build, ingest, published_counts, run_errors
from rwe_assets.settings import REPO_DIR, Settings

# the names other modules and tests use as `rwe_assets.cli.<name>`
__all__ = [
    "FAILED",
    "REFUSED",
    "SAMPLE_BATCHES",
    "SAMPLE_DIR",
    "duckdb_cli",
    "execute_build",
    "main",
    "published_counts",
    "run_errors",
]

# Commands kept in their own module: name -> module with HELP, add_arguments(parser) and
# run(settings, args) -> exit code. The module is imported only to parse and run its command.
COMMAND_MODULES: dict[str, str] = {
    "erase": "rwe_assets.lib.governance.erase",
    "review": "rwe_assets.lib.linkage.review",
    "rotate-key": "rwe_assets.lib.linkage.rotate",
    "extract": "rwe_assets.lib.governance.extract",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:  # its own options: rwe_assets/synthetic/cli.py
        from rwe_assets.synthetic.cli import main as generate_main

        return generate_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "compare":  # reads two files: no settings, no Dagster home
        return _compare(args.cdm_a, args.cdm_b, args.tables, args.limit)
    from rwe_assets.errors import ConfigError

    try:
        return _dispatch(args)
    except ConfigError as error:
        print(f"rwe {args.command}: {error}", file=sys.stderr)
        return REFUSED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "init", help="write a secret linkage key and a tombstone key into <data>/rwe.env (mode 0600), once"
    )
    demo = commands.add_parser("demo", help="land the bundled samples and a generated population, build")
    demo.add_argument(
        "--persons", type=int, default=DEMO_PERSONS, help="generated persons (default %(default)s)"
    )
    commands.add_parser("generate", help="write a synthetic multi-source population (rwe generate --help)")
    commands.add_parser("ingest", help="ingest every batch waiting in the landing zone, then build")
    for command in (demo, commands.choices["ingest"]):
        command.add_argument(
            "--verbose", action="store_true", help="print Dagster's debug log and every warning"
        )
    ui = commands.add_parser("ui", help="start the Dagster UI (dagster dev) with sensors on")
    ui.add_argument("--port", type=int, default=3000)
    clean = commands.add_parser(
        "clean", help="remove what the demo landed and everything built; keep your own batches"
    )
    clean.add_argument(
        "--all", action="store_true", help="remove your landed batches too (configuration stays)"
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the ingest manifest against the raw Delta tables and repair what a crash or a second "
        "writer left (files listed twice, rows stored twice, manifest rows without rows, orphan rows, runs "
        "whose process is gone); exit 0 when the lake is (now) consistent, 1 when something could not be "
        "repaired",
    )
    doctor.add_argument(
        "--check", action="store_true", help="only report; repair nothing (exit 1 if anything is found)"
    )
    sql = commands.add_parser("sql", help="open the published CDM read-only in the DuckDB shell")
    sql.add_argument("file", nargs="?", type=Path, help="a DuckDB file (default: the published rwe.duckdb)")
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
    for name, module in COMMAND_MODULES.items():
        command = importlib.import_module(module)
        command.add_arguments(commands.add_parser(name, help=command.HELP))
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    report_landing(settings)  # every command says what in the landing zone is never read
    if args.command == "init":
        return init_keys(settings)
    if args.command == "sql":
        return open_sql(args.file or published_path(settings))
    if args.command == "clean":
        return clean_data_dir(settings, everything=args.all)
    prepare_dagster_home(settings)
    if args.command == "doctor":
        from rwe_assets.lib.doctor import main as doctor_main

        return doctor_main(settings, repair=not args.check)
    if args.command == "ui":
        return _ui(args.port)
    if args.command in COMMAND_MODULES:
        return importlib.import_module(COMMAND_MODULES[args.command]).run(settings, args)
    if args.command == "demo":
        land_sample(settings)
        land_generated_population(settings, args.persons)
    return ingest(settings, verbose=args.verbose)


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
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_DIR / "workspace.yaml")]
    return subprocess.call([*command, "-h", "127.0.0.1", "-p", str(port)])
