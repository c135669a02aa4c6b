"""Writing the de-identified extract's tables from the attached source CDM (catalog ``src``): the
persons' offsets and birth years, each CDM table by the rules of ``extract_rules``, the shareable
results, and the report (deid.table_counts, deid.rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from rwe_assets.errors import RweError
from rwe_assets.lib.analytics.disclosure import suppressed_sql
from rwe_assets.lib.cdm_spec import cdm_spec
from rwe_assets.lib.governance.extract_rules import (
    CLEARED,
    COPIED_RESULTS,
    EMPTIED,
    MAX_AGE,
    PERSON_KEY,
    QUASI_IDENTIFYING_STRATA,
    RARE_TEXT,
    RESTRICTED_ZIP3,
    SHIFT_DAYS,
    UNSHIFTED,
    shift_days,
)
from rwe_assets.lib.sql_text import quote_identifier as q
from rwe_assets.lib.sql_text import quote_literal


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


# --- persons: offsets, birth year, ages over 89 ---------------------------------------------------


def source_tables(con) -> dict[str, dict[str, str]]:
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


def person_frame(con, tables, key: bytes, as_of: date) -> tuple[int, int]:
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


def write_cdm_table(con, name: str, columns: dict[str, str], minimum: int) -> TableCount:
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


def write_results(con, minimum: int) -> int:
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


def write_report(con, counts: tuple[TableCount, ...], minimum: int) -> None:
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
