"""Vocabulary at Athena size: what a build pays for it, before and after the vocabulary store.

Writes an Athena-layout folder with the bundled vocab/ rows plus synthetic filler up to Athena's size
(default 2M concepts, 10M relationships, 10M ancestors), then times, in one process:

- bare: DuckDB parsing the same files (read_csv, count) and nothing else: the floor of any load;
- load: lib/vocabulary.load_vocabulary into a fresh CDM schema (what every build did before the store);
- store (cold): ensure_vocabulary_store on a new digest (once per vocabulary version);
- store (warm): ensure_vocabulary_store again (digest only: the files are hashed, not parsed);
- copy: copy_vocabulary from the store into a fresh CDM schema (what every build does now).

    python bench/vocabulary.py [--concepts 2000000] [--relationships 10000000] [--ancestors 10000000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.vocabulary import (
    VOCABULARY_TABLES,
    copy_vocabulary,
    ensure_vocabulary_store,
    load_vocabulary,
    vocabulary_file,
)
from rwe_assets.settings import REPO_DIR

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, default=2_000_000)
    parser.add_argument("--relationships", type=int, default=10_000_000)
    parser.add_argument("--ancestors", type=int, default=10_000_000)
    args = parser.parse_args()
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
        copy = timed("copy (new)", lambda: sum(copy_vocabulary(fresh_cdm(), store.path).values()))
        print(
            f"\nper build: load {load:.1f} s -> copy {copy:.1f} s; load / bare parse = {load / bare:.2f}x, "
            f"copy / bare parse = {copy / bare:.2f}x"
        )


if __name__ == "__main__":
    main()
