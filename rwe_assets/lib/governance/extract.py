"""The de-identified extract: warehouse/rwe_deid.duckdb, the published CDM under HIPAA Safe Harbor.

The published rwe.duckdb is a limited data set (real dates, 5-digit ZIP codes). This module writes a
copy of it for wider sharing, following the Safe Harbor method (45 CFR 164.514(b)(2)); every rule and
its reason is listed in docs/governance.md and written into the extract itself (deid.rules):

- dates: every date and timestamp of a person's rows moves by one offset per person, a keyed HMAC of
  the person_id (key derived from the linkage key), in -SHIFT_DAYS..-1 or 1..SHIFT_DAYS days, never 0;
  intervals within a person stay exact. Birth keeps only the year of the shifted birth date.
- ages over 89: a person whose age could exceed 89 at their latest date (the extract date while alive)
  is "90 or older" (deid.person.age_90_or_older): their year of birth becomes the latest year minus 89,
  and their rows dated before that year are dropped (counted) or, for spans, start on its first day.
- geography: ZIP to its first three digits, 000 for the RESTRICTED_ZIP3 areas; street, city, county,
  coordinates and the location's source text cleared; the state stays.
- free text, names and identifiers: NOTE and NOTE_NLP emptied; CLEARED columns set to NULL; RARE_TEXT
  columns kept only for values that at least min_cell_count persons share (a payer or "Never smoker"
  stays, a value one person has, such as a member's own id, goes).
- aggregate results: only Achilles counts and incidence rates, re-suppressed with the minimum cell
  count, and no analysis stratified by age, birth year, calendar date, ZIP or source value.

The file is written next to the target and renamed over it, as lib/publish.py does: readers see the
old extract or the new one, never half of one. The rules are data in ``extract_rules``; the tables
are written by ``extract_tables``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from rwe_assets.lib.analytics.disclosure import check_min_cell_count, min_cell_count
from rwe_assets.lib.governance import permissions
from rwe_assets.lib.governance.extract_rules import (
    CLEARED,
    CODE_SOURCE_VALUES,
    EMPTIED,
    RARE_TEXT,
    shift_days,
    shift_key,
)
from rwe_assets.lib.governance.extract_tables import (
    ExtractRefused,
    TableCount,
    person_frame,
    source_tables,
    write_cdm_table,
    write_report,
    write_results,
)
from rwe_assets.lib.publish import PUBLISHED
from rwe_assets.lib.sql_text import quote_literal
from rwe_assets.lib.warehouse_files import DEID_FILE

# the extract's public names, the rules' included
__all__ = [
    "CLEARED",
    "CODE_SOURCE_VALUES",
    "DEID_FILE",
    "EMPTIED",
    "HELP",
    "RARE_TEXT",
    "ExtractRefused",
    "ExtractResult",
    "add_arguments",
    "export",
    "run",
    "shift_days",
    "shift_key",
    "write_extract",
]

HELP = "write the de-identified extract (HIPAA Safe Harbor) <data>/warehouse/rwe_deid.duckdb from the published CDM"


@dataclass(frozen=True)
class ExtractResult:
    path: Path
    persons: int
    persons_90_plus: int
    counts: tuple[TableCount, ...]
    results_rows: int
    seconds: float

    def audit_what(self) -> dict:
        """The audit row: the path and counts, never a value."""
        return {
            "path": str(self.path),
            "persons": self.persons,
            "persons_90_plus": self.persons_90_plus,
            "tables": len(self.counts),
            "rows": sum(c.rows_extract for c in self.counts),
            "rows_dropped": sum(c.rows_source - c.rows_extract for c in self.counts),
            "results_rows": self.results_rows,
        }


def export(settings, as_of: date | None = None) -> ExtractResult:
    """Write <warehouse>/rwe_deid.duckdb from the published CDM and record it in the audit trail."""
    # imported here: `rwe` imports this module to build its parser for every command
    from rwe_assets.lib.governance import audit
    from rwe_assets.lib.linkage.keys import resolve_key

    key = resolve_key(settings.linkage_key, settings.data_dir)
    target = settings.warehouse_dir / DEID_FILE
    try:
        result = write_extract(
            settings.warehouse_dir / PUBLISHED,
            target,
            key.value,
            minimum=min_cell_count(settings=settings),
            as_of=as_of,
            memory_limit=settings.duckdb_memory_limit,
            threads=settings.duckdb_threads,
        )
    except ExtractRefused:
        audit.record(settings, "export", what={"path": str(target)}, outcome="refused")
        raise
    permissions.share_with_analysts(result.path, settings.analyst_group)
    audit.record(settings, "export", what={**result.audit_what(), "demo_key": key.demo})
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the extract date ages are counted to for living persons (YYYY-MM-DD; default today)",
    )


def run(settings, args: argparse.Namespace) -> int:
    """`rwe extract`: 0 written, 1 refused by a rule, 2 nothing published yet."""
    try:
        result = export(settings, as_of=args.as_of)
    except FileNotFoundError as error:
        print(f"rwe extract: {error}", file=sys.stderr)
        return 2
    except ExtractRefused as error:
        print(f"rwe extract: refused, nothing written: {error}", file=sys.stderr)
        return 1
    dropped = sum(c.rows_source - c.rows_extract for c in result.counts)
    print(
        f"{result.path}: {result.persons:,} persons ({result.persons_90_plus:,} aged 90 or older), "
        f"{sum(c.rows_extract for c in result.counts):,} rows, {dropped:,} dropped (deid.table_counts), "
        f"{result.results_rows:,} result rows, {result.seconds:.1f} s"
    )
    return 0


def write_extract(
    source: Path,
    target: Path,
    linkage_key: str,
    *,
    minimum: int,
    as_of: date | None = None,
    memory_limit: str = "4GB",
    threads: int = 2,
) -> ExtractResult:
    """The extract of `source` (a CDM DuckDB file), written atomically to `target`."""
    started = time.perf_counter()
    source, target = Path(source), Path(target)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: publish the CDM first")
    check_min_cell_count(minimum)
    incoming = target.with_name(f".incoming-{target.name}")  # its catalog name is never a schema name
    for leftover in (incoming, incoming.with_name(incoming.name + ".wal")):  # what a killed extract left
        leftover.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(incoming)) as con:
            con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
            con.execute(f"SET threads = {int(threads)}")
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"ATTACH {quote_literal(str(source))} AS src (READ_ONLY)")
            tables = source_tables(con)
            persons, persons_90 = person_frame(con, tables, shift_key(linkage_key), as_of or date.today())
            counts = tuple(write_cdm_table(con, name, columns, minimum) for name, columns in tables.items())
            results_rows = write_results(con, minimum)
            write_report(con, counts, minimum)
            con.execute("DETACH src")
            con.execute("CHECKPOINT")
        with open(incoming, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(incoming, permissions.SHARED_FILE)  # for analysts, never world-readable
        os.replace(incoming, target)
    finally:
        incoming.unlink(missing_ok=True)
        incoming.with_name(incoming.name + ".wal").unlink(missing_ok=True)
    return ExtractResult(target, persons, persons_90, counts, results_rows, time.perf_counter() - started)
