"""`rwe generate`: write a synthetic multi-source population and its ground truth.

rwe generate --persons 10000 --seed 42 --out /tmp/synth
python -m rwe_assets.synthetic --persons 10000 --seed 42 --out /tmp/synth --gzip --workers 2
... --set typo_rate=0.1 --set coverage_payer=0.9   (any NoiseConfig field)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib import truth_files
from rwe_assets.synthetic.config import DEFAULT_CHUNK, NoiseConfig
from rwe_assets.synthetic.generator import generate
from rwe_assets.synthetic.update import generate_update


def _overrides(items: list[str]) -> NoiseConfig:
    known = {f.name for f in fields(NoiseConfig)}
    values: dict[str, float] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or key not in known:
            raise ConfigError(
                f"--set: expected NAME=VALUE with NAME one of {', '.join(sorted(known))}, found {item!r}"
            )
        try:
            values[key] = float(value)
        except ValueError:
            raise ConfigError(f"--set {key}: expected a number, found {value!r}") from None
    return replace(NoiseConfig(), **values)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rwe generate",
        description="Write a synthetic EHR + claims + genomics population with ground truth.",
    )
    p.add_argument(
        "--persons", type=int, help="number of true persons (with --update-of: the base's, checked)"
    )
    p.add_argument("--seed", type=int, help="random seed (same seed, same bytes; default 0)")
    p.add_argument("--out", required=True, help="output folder: landing/ and truth/ are written inside")
    p.add_argument("--batches", type=int, default=1, help="split persons over this many landing batches")
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK, help="persons simulated at a time")
    p.add_argument("--gzip", action="store_true", help="gzip the CSV and NDJSON files (.csv.gz, .ndjson.gz)")
    p.add_argument("--workers", type=int, default=1, help="processes simulating chunks in parallel")
    p.add_argument(
        "--update-of",
        metavar="BASE_DIR",
        help="write an update batch (update_<number>) for the population generated into BASE_DIR",
    )
    p.add_argument("--fraction", type=float, default=0.01, help="with --update-of: size of the update")
    p.add_argument("--update-number", type=int, default=1, help="with --update-of: batch update_<number>")
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a NoiseConfig knob"
    )
    return p


def _update(args: argparse.Namespace) -> int:
    """--update-of: the base's seed, knobs and layout are read from its report; --persons, --seed
    and --set, when given, must agree with it (an update of another population is refused)."""
    try:
        base = json.loads((Path(args.update_of) / truth_files.TRUTH_DIR / truth_files.REPORT).read_text())
        given = {"persons": args.persons, "seed": args.seed}
        for name, value in given.items():
            if value is not None and value != base[name]:
                raise ConfigError(f"--{name} {value} differs from the base's {base[name]} ({args.update_of})")
        if args.set and _overrides(args.set).as_dict() != base["config"]:
            raise ConfigError("--set differs from the base's knobs: an update uses the base's")
        report = generate_update(
            args.update_of, args.out, args.fraction, number=args.update_number, workers=args.workers
        )
    except (ConfigError, OSError, KeyError, ValueError) as error:
        print(f"rwe generate: {error}", file=sys.stderr)
        return 2
    changes = ", ".join(f"{k} {v:,}" for k, v in report.changes.items())
    print(
        f"update {report.batch} of {report.base_persons:,} persons (seed {report.seed}): "
        f"{report.new_persons:,} new persons, {report.rows_written:,} rows; {changes}"
    )
    print(f"  landing zone: {args.out}/landing   ground truth: {args.out}/truth")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.update_of:
        return _update(args)
    if args.persons is None:
        print("rwe generate: --persons is required", file=sys.stderr)
        return 2
    try:
        config = _overrides(args.set)
        started = time.perf_counter()
        report = generate(
            args.out,
            args.persons,
            args.seed if args.seed is not None else 0,
            config,
            batches=args.batches,
            chunk_size=args.chunk_size,
            compress=args.gzip,
            workers=args.workers,
        )
    except ConfigError as error:
        print(f"rwe generate: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(
        f"{report.persons:,} persons, seed {report.seed}: {report.rows_written:,} rows, "
        f"{report.bytes_written / 1e6:,.1f} MB in {len(report.files)} files, {elapsed:,.1f} s "
        f"({report.persons / elapsed:,.0f} persons/s); {report.events_per_person:.1f} clinical events per person"
    )
    for source in ("ehr_site_a", "ehr_site_b", "payer", "lab"):
        files = report.files_of(source)
        print(
            f"  {source:11s} {report.source_records.get(source, 0):>9,} person records "
            f"({report.duplicate_records.get(source, 0):,} duplicates), {sum(f.rows for f in files):>12,} rows, "
            f"{report.malformed_rows(source):,} malformed"
        )
    print(f"  landing zone: {args.out}/landing   ground truth: {args.out}/truth")
    if not report.tabix_indexed:
        print("  note: no tabix index written (htslib from cyvcf2 not reachable)", file=sys.stderr)
    return 0
