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
old extract or the new one, never half of one.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import RweError
from rwe_assets.lib.analytics.disclosure import check_min_cell_count, min_cell_count, suppressed_sql
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.governance import permissions
from rwe_assets.lib.publish import PUBLISHED
from rwe_assets.lib.sql_text import quote_identifier as q
from rwe_assets.lib.sql_text import quote_literal

HELP = "write the de-identified extract (HIPAA Safe Harbor) <data>/warehouse/rwe_deid.duckdb from the published CDM"
DEID_FILE = "rwe_deid.duckdb"
SHIFT_DAYS = 180  # offsets are -180..-1 and 1..180 days
MAX_AGE = 89
SHIFT_CONTEXT = b"rwe_assets de-identified extract: date shift v1"
# Three-digit ZIP areas with 20,000 people or fewer (HHS de-identification guidance, 2000 census).
RESTRICTED_ZIP3 = frozenset(
    [
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    ]
)
EMPTIED = {"note": "free text", "note_nlp": "free text derived from notes"}
CLEARED: dict[str, dict[str, str]] = {
    "person": {
        "person_source_value": "source patient id",
        "month_of_birth": "date element other than year",
        "day_of_birth": "date element other than year",
        "birth_datetime": "date element other than year",
    },
    "location": {
        "address_1": "street address",
        "address_2": "street address",
        "city": "geographic subdivision smaller than a state",
        "county": "geographic subdivision smaller than a state",
        "location_source_value": "source text of city, ZIP and county",
        "latitude": "geocode",
        "longitude": "geocode",
    },
    "provider": {
        "provider_name": "name",
        "npi": "identifier",
        "dea": "identifier",
        "provider_source_value": "source identifier",
        "year_of_birth": "with gender and site, singles out a clinician",
    },
    "care_site": {"care_site_name": "facility name", "care_site_source_value": "source identifier"},
    "payer_plan_period": {
        "sponsor_source_value": "employer identifier",
        "family_source_value": "household identifier",
    },
    "specimen": {"specimen_source_id": "sample or accession number"},
    "variant_occurrence": {"variant_source_value": "built from the sample id"},
    "device_exposure": {"unique_device_id": "device identifier", "production_id": "device serial number"},
    "drug_exposure": {"lot_number": "product serial", "sig": "free text", "stop_reason": "free text"},
    "condition_occurrence": {"stop_reason": "free text"},
}
RARE_TEXT = {
    "payer_plan_period": ("payer_source_value", "plan_source_value"),
    "observation": ("value_as_string", "value_source_value"),
}
# Source values kept as they are: codes, units, categories, numbers (one of a vocabulary or a short list).
CODE_SOURCE_VALUES = frozenset(
    (table, f"{column}_source_value")
    for table, columns in {
        "person": ("gender", "race", "ethnicity"),
        "visit_occurrence": ("visit", "admitted_from", "discharged_to"),
        "visit_detail": ("visit_detail", "admitted_from", "discharged_to"),
        "condition_occurrence": ("condition", "condition_status"),
        "drug_exposure": ("drug", "route", "dose_unit"),
        "procedure_occurrence": ("procedure", "modifier"),
        "device_exposure": ("device", "unit"),
        "measurement": ("measurement", "unit", "value"),
        "observation": ("observation", "unit", "qualifier"),
        "death": ("cause",),
        "specimen": ("specimen", "unit", "anatomic_site", "disease_status"),
        "location": ("country",),
        "care_site": ("place_of_service",),
        "provider": ("specialty", "gender"),
        "payer_plan_period": ("stop_reason",),
        "cost": ("revenue_code", "drg"),
        "episode": ("episode",),
    }.items()
    for column in columns
)
# Dates that are not a person's: the dataset's own, the vocabulary's, a cohort definition's.
UNSHIFTED = frozenset({"cdm_source", "metadata", "cohort_definition"})
PERSON_KEY = {"cohort": "subject_id"}  # every other person-level table: person_id
COPIED_RESULTS = ("achilles_analysis", "achilles_results", "incidence_rate")
# Achilles strata that describe a person's age, birth, dates, place or source text: not copied.
QUASI_IDENTIFYING_STRATA = (
    "age",
    "age decile",
    "age_decile",
    "year_of_birth",
    "calendar month",
    "calendar year",
    "3-digit zip",
    "source_value",
)


class ExtractRefused(RweError):
    """The published CDM holds something no rule covers; no extract is written."""


@dataclass(frozen=True)
class TableCount:
    table: str
    rows_source: int
    rows_extract: int
    dropped_no_person: int  # a row whose person is not in PERSON
    dropped_before_age_window: int  # a row of a person aged 90+, dated before their shown birth year
    emptied: int  # free text tables


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


def shift_key(linkage_key: str) -> bytes:
    """A key of its own for date shifts, derived from the linkage key (tokens never reveal it)."""
    return hmac.new(linkage_key.encode(), SHIFT_CONTEXT, hashlib.sha256).digest()


def shift_days(key: bytes, person_id: int) -> int:
    """The person's offset in days: -SHIFT_DAYS..-1 or 1..SHIFT_DAYS, never 0, the same every run."""
    digest = hmac.new(key, str(int(person_id)).encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big") % (2 * SHIFT_DAYS)  # bias ~2**-55: negligible
    return n - SHIFT_DAYS if n < SHIFT_DAYS else n - SHIFT_DAYS + 1


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
            tables = _source_tables(con)
            persons, persons_90 = _person_frame(con, tables, shift_key(linkage_key), as_of or date.today())
            counts = tuple(_write_cdm_table(con, name, columns, minimum) for name, columns in tables.items())
            results_rows = _write_results(con, minimum)
            _write_report(con, counts, minimum)
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


# --- persons: offsets, birth year, ages over 89 ---------------------------------------------------


def _source_tables(con) -> dict[str, dict[str, str]]:
    """cdm table -> {column: DuckDB type}, in the source's column order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = 'src' AND schema_name = 'cdm' ORDER BY table_name, column_index"
    ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, {})[column] = data_type
    return tables


def _dated(columns: dict[str, str]) -> list[str]:
    return [c for c, t in columns.items() if t in ("DATE", "TIMESTAMP")]


def _shifted_tables(tables: dict[str, dict[str, str]]) -> dict[str, str]:
    """Tables whose dates are a person's and move with them: table -> its person column. A dated table
    with no person column and no rule is refused: its dates could be anyone's."""
    vocabulary = {t.name for t in cdm_spec().tables if t.is_vocabulary}
    shifted = {}
    for name, columns in tables.items():
        if name in EMPTIED or name == "person" or name in UNSHIFTED | vocabulary or not _dated(columns):
            continue
        key = PERSON_KEY.get(name, "person_id")
        if key not in columns:
            raise ExtractRefused(f"cdm.{name}: dated columns without a {key} and no de-identification rule")
        shifted[name] = key
    return shifted


def _person_frame(con, tables, key: bytes, as_of: date) -> tuple[int, int]:
    """Temp table deid_person: person_id, shift_days, year_of_birth (shifted, top-coded at 90+),
    window_start (the first day a 90+ person's rows may show, NULL for everyone else)."""
    ids = con.execute("SELECT person_id FROM src.cdm.person").fetchnumpy()["person_id"].tolist()
    offsets = pa.table(
        {
            "person_id": pa.array(ids, pa.int64()),
            "shift_days": pa.array([shift_days(key, i) for i in ids], pa.int32()),
        }
    )
    con.register("person_offsets", offsets)
    latest = " UNION ALL ".join(
        f"SELECT {q(pk)} AS person_id, max(greatest({', '.join(f'{q(c)}::TIMESTAMP' for c in _dated(tables[t]))})) "
        f"AS latest FROM src.cdm.{q(t)} GROUP BY 1"
        for t, pk in _shifted_tables(tables).items()
    )
    latest = latest or "SELECT NULL::BIGINT AS person_id, NULL::TIMESTAMP AS latest"
    con.execute(
        f"""
        CREATE TEMP TABLE deid_person AS
        WITH latest AS (SELECT person_id, max(latest)::DATE AS latest FROM ({latest}) GROUP BY 1),
        shifted AS (
            SELECT p.person_id, o.shift_days,
                   year(coalesce(p.birth_datetime::DATE,
                                 make_date(p.year_of_birth, coalesce(p.month_of_birth, 7),
                                           coalesce(p.day_of_birth, CASE WHEN p.month_of_birth IS NULL
                                                                         THEN 1 ELSE 15 END)))
                        + o.shift_days) AS birth_year,
                   -- the latest date the extract shows for the person; while alive, at least the extract date
                   year(greatest(l.latest + o.shift_days,
                                 CASE WHEN p.person_id NOT IN (SELECT person_id FROM src.cdm.death)
                                      THEN DATE {quote_literal(as_of.isoformat())} END)) AS latest_year
            FROM src.cdm.person p JOIN person_offsets o USING (person_id)
            LEFT JOIN latest l USING (person_id)
        )
        SELECT person_id, shift_days, latest_year - birth_year > {MAX_AGE} AS age_90_or_older,
               CASE WHEN latest_year - birth_year > {MAX_AGE} THEN latest_year - {MAX_AGE}
                    ELSE birth_year END AS year_of_birth,
               CASE WHEN latest_year - birth_year > {MAX_AGE}
                    THEN make_date(latest_year - {MAX_AGE}, 1, 1) END AS window_start
        FROM shifted
        """
    )
    con.unregister("person_offsets")
    con.execute("CREATE SCHEMA deid")
    con.execute("CREATE TABLE deid.person AS SELECT person_id, age_90_or_older FROM deid_person ORDER BY 1")
    return con.execute("SELECT count(*), count(*) FILTER (age_90_or_older) FROM deid_person").fetchone()


# --- CDM tables -----------------------------------------------------------------------------------


def _write_cdm_table(con, name: str, columns: dict[str, str], minimum: int) -> TableCount:
    """Create cdm.<name> with the source's DDL and fill it by the rules; returns its counts."""
    if name in CLEARED and (unknown := set(CLEARED[name]) - set(columns)):
        raise ExtractRefused(f"cdm.{name}: rule for columns the table lacks: {', '.join(sorted(unknown))}")
    ddl = con.execute(
        "SELECT sql FROM duckdb_tables() WHERE database_name = 'src' AND schema_name = 'cdm' AND table_name = ?",
        [name],
    ).fetchone()[0]
    con.execute("CREATE SCHEMA IF NOT EXISTS cdm")
    con.execute(ddl)
    source_rows = con.execute(f"SELECT count(*) FROM src.cdm.{q(name)}").fetchone()[0]
    if name in EMPTIED:
        return TableCount(name, source_rows, 0, 0, 0, source_rows)
    tables = {name: columns}
    person_key = _shifted_tables(tables).get(name) if name != "person" else "person_id"
    exprs = [_column_sql(name, c, t, minimum, shifted=person_key is not None) for c, t in columns.items()]
    if person_key is None:
        con.execute(f"INSERT INTO cdm.{q(name)} SELECT {', '.join(exprs)} FROM src.cdm.{q(name)} t")
        return TableCount(name, source_rows, source_rows, 0, 0, 0)
    join = f"FROM src.cdm.{q(name)} t LEFT JOIN deid_person d ON d.person_id = t.{q(person_key)}"
    latest = _row_latest(columns) if name != "person" else "NULL"
    too_early = f"(d.window_start IS NOT NULL AND {latest} < d.window_start)"
    con.execute(
        f"INSERT INTO cdm.{q(name)} SELECT {', '.join(exprs)} {join} "
        f"WHERE d.person_id IS NOT NULL AND NOT coalesce({too_early}, false)"
    )
    no_person, early, kept = con.execute(
        f"SELECT count(*) FILTER (d.person_id IS NULL), count(*) FILTER (coalesce({too_early}, false)), "
        f"(SELECT count(*) FROM cdm.{q(name)}) {join}"
    ).fetchone()
    if kept + no_person + early != source_rows:
        raise ExtractRefused(f"cdm.{name}: {source_rows} rows read, {kept + no_person + early} accounted for")
    return TableCount(name, source_rows, kept, no_person, early, 0)


def _row_latest(columns: dict[str, str]) -> str:
    """The row's latest shifted date (NULL when it has none)."""
    dated = _dated(columns)
    return f"greatest({', '.join(f'(t.{q(c)} + to_days(d.shift_days))::DATE' for c in dated)})"


def _column_sql(table: str, column: str, data_type: str, minimum: int, *, shifted: bool) -> str:
    """The SELECT expression for one column of the extract."""
    col = f"t.{q(column)}"
    if column in CLEARED.get(table, {}):
        return f"NULL::{data_type} AS {q(column)}"
    if column in RARE_TEXT.get(table, ()):
        person = PERSON_KEY.get(table, "person_id")
        common = (
            f"SELECT {q(column)} FROM src.cdm.{q(table)} GROUP BY 1 "
            f"HAVING count(DISTINCT {q(person)}) >= {int(minimum)}"
        )
        return f"CASE WHEN {col} IN ({common}) THEN {col} END AS {q(column)}"
    if table == "person" and column == "year_of_birth":
        return f"d.year_of_birth AS {q(column)}"
    if table == "location" and column == "zip":
        return f"{_zip3_sql(col)} AS {q(column)}"
    if shifted and data_type in ("DATE", "TIMESTAMP"):
        moved = f"CAST({col} + to_days(d.shift_days) AS {data_type})"
        # a 90+ person's span that began before their shown birth year begins on its first day
        return f"CASE WHEN {col} IS NOT NULL THEN greatest({moved}, d.window_start::{data_type}) END AS {q(column)}"
    return f"{col} AS {q(column)}"


def _zip3_sql(col: str) -> str:
    """A US ZIP (3, 5 or 9 digits) as its first three digits, 000 in a restricted area; anything else
    (a foreign postcode) NULL."""
    restricted = ", ".join(quote_literal(z) for z in sorted(RESTRICTED_ZIP3))
    return (
        f"CASE WHEN regexp_full_match(trim({col}), '[0-9]{{3}}([0-9]{{2}}([0-9]{{4}})?)?') THEN "
        f"CASE WHEN left(trim({col}), 3) IN ({restricted}) THEN '000' ELSE left(trim({col}), 3) END END"
    )


# --- results and the report -----------------------------------------------------------------------


def _has_results_table(con, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'src' AND schema_name = 'results' "
            "AND table_name = ?",
            [name],
        ).fetchone()[0]
    )


def _write_results(con, minimum: int) -> int:
    """Copy the shareable aggregates, small cells suppressed again with today's minimum."""
    con.execute("CREATE SCHEMA results")
    present = [t for t in COPIED_RESULTS if _has_results_table(con, t)]
    if "achilles_analysis" not in present:  # its catalogue decides which analyses may leave
        present = [t for t in present if t != "achilles_results"]
    for table in present:
        con.execute(f"CREATE TABLE results.{q(table)} AS {_results_select(table, minimum)}")
    return sum(con.execute(f"SELECT count(*) FROM results.{q(t)}").fetchone()[0] for t in present)


def _results_select(table: str, minimum: int) -> str:
    if table == "achilles_results":
        names = ", ".join(quote_literal(s) for s in QUASI_IDENTIFYING_STRATA)
        strata = " OR ".join(f"lower(stratum_{i}_name) IN ({names})" for i in range(1, 6))
        excluded = f"SELECT analysis_id FROM src.results.achilles_analysis WHERE {strata}"
        return (
            f"SELECT * FROM src.results.achilles_results WHERE NOT {suppressed_sql('count_value', minimum)} "
            f"AND analysis_id NOT IN ({excluded})"
        )
    if table == "incidence_rate":
        small_persons = suppressed_sql("persons", minimum)
        hide = f"({small_persons} OR {suppressed_sql('outcomes', minimum)})"
        blanked = ", ".join(
            f"CASE WHEN {hide} THEN NULL ELSE {c} END AS {c}"
            for c in ("outcomes", "rate_per_1000py", "ci_lower", "ci_upper")
        )
        return (
            f"SELECT * REPLACE (CASE WHEN {small_persons} THEN NULL ELSE persons END AS persons, {blanked}, "
            f"CASE WHEN {suppressed_sql('prior_outcome_persons', minimum)} THEN NULL "
            f"ELSE prior_outcome_persons END AS prior_outcome_persons, suppressed OR {hide} AS suppressed) "
            "FROM src.results.incidence_rate"
        )
    return f"SELECT * FROM src.results.{q(table)}"


def _write_report(con, counts: tuple[TableCount, ...], minimum: int) -> None:
    """deid.table_counts (rows read, kept and dropped by reason) and deid.rules (what each rule did)."""
    con.register("counts", pa.Table.from_pylist([vars(c) for c in counts]))
    con.execute("CREATE TABLE deid.table_counts AS SELECT * FROM counts ORDER BY 1")
    con.unregister("counts")
    rules = [("cdm", t, "*", "emptied", why) for t, why in EMPTIED.items()]
    rules += [("cdm", t, c, "cleared", why) for t, cols in CLEARED.items() for c, why in cols.items()]
    rules += [
        ("cdm", t, c, "kept when shared", f"values held by fewer than {minimum} persons cleared")
        for t, cols in RARE_TEXT.items()
        for c in cols
    ]
    rules += [
        ("cdm", "location", "zip", "generalized", "first 3 digits; 000 for restricted areas"),
        ("cdm", "person", "year_of_birth", "generalized", "year of the shifted birth date; top-coded at 90+"),
        ("cdm", "*", "date and timestamp columns", "shifted", f"per person, 1..{SHIFT_DAYS} days either way"),
        ("results", "*", "count columns", "suppressed", f"counts below {minimum} removed or blanked"),
    ]
    con.register(
        "rules",
        pa.table(list(zip(*rules, strict=True)), names=["schema", "table", "column", "action", "reason"]),
    )
    con.execute("CREATE TABLE deid.rules AS SELECT * FROM rules")
    con.unregister("rules")
