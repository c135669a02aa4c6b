"""`rwe review`: the clerical review of grey-zone pairs (docs/linkage.md, "Clerical review").

export: the pending pairs (linkage/clerical_review less those a reviewer decided since the last run)
as a CSV file for reviewers inside the trusted zone, mode 0600: the two records side by side from the
staged PII, with score, household-conflict flag and the comparisons that agree and disagree.
import: the reviewers' decisions from that file, validated as a whole (nothing is appended unless
every row is valid), appended to linkage/clerical_decisions with who, when and a note; every later
linkage run honours them (cluster.decide). status: counts.

Errors name the file, line and field and never a value: the file holds PII.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.governance import audit, permissions
from rwe_assets.lib.lake_lock import lake_lock
from rwe_assets.lib.linkage.crosswalk import register_staged_persons

HELP = "clerical review of grey-zone linkage pairs: export them, import decisions, status"
DECISIONS = ("match", "non_match")
# Written by the reviewer; everything else in the file is read-only context.
INPUT_COLUMNS = ("pair_id", "decision", "note", "reviewer")
# Fields shown for each side of a pair; identifiers show their last four characters only (whether the
# full numbers agree is in the agree/disagree columns).
SIDE_FIELDS = (
    "source_system", "source_person_id", "given_name", "family_name", "maiden_name", "birth_date", "sex",
    "ssn", "drivers_license", "passport", "address_line", "city", "state", "zip", "phone", "email",
)  # fmt: skip
MASKED = ("ssn", "drivers_license", "passport")
MAX_ERRORS_SHOWN = 20
DECISIONS_SCHEMA = pa.schema(
    [
        ("record_id_l", pa.string()),
        ("record_id_r", pa.string()),
        ("decision", pa.string()),
        ("decided_at", pa.timestamp("us", "UTC")),
        ("decided_by", pa.string()),
        ("note", pa.string()),
        ("pair_id", pa.string()),
        ("match_probability", pa.float64()),  # the pair's score when it was decided
        ("review_file_sha256", pa.string()),
    ]
)
_FILE_SCHEMA = pa.schema(
    [("line", pa.int64()), ("pair_id", pa.string()), ("decision", pa.string()), ("note", pa.string()),
     ("reviewer", pa.string())]
)  # fmt: skip
# A pair's id: a short hash of its two record ids (ordered), stable across runs and exports.
PAIR_ID_SQL = "left(md5(record_id_l || chr(31) || record_id_r), 16)"


class ReviewFileError(InputFileError):
    """A review file that cannot be imported; `problems` lists every bad row (file, line, field)."""

    def __init__(self, path: str, problems: list[InputFileError]):
        self.problems = problems
        first = problems[0]
        super().__init__(path, first.problem, line=first.line, field=first.field)


@dataclass
class ImportResult:
    decisions: dict[str, int] = field(default_factory=dict)
    left_pending: int = 0
    file_sha256: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="review_command", required=True)
    export = commands.add_parser("export", help="write the pending pairs to a CSV file (mode 0600)")
    export.add_argument(
        "--out", type=Path, help="the file to write (default: <data>/review/pending-<UTC time>.csv)"
    )
    imported = commands.add_parser("import", help="append the decisions of an exported, edited file")
    imported.add_argument("file", type=Path)
    imported.add_argument(
        "--reviewer", help="who decided, where a row's reviewer column is empty (default: the OS user)"
    )
    imported.add_argument(
        "--revise",
        action="store_true",
        help="also accept pairs a reviewer decided before (the newest decision wins)",
    )
    commands.add_parser("status", help="count pending pairs and recorded decisions")


def run(settings, args: argparse.Namespace) -> int:
    try:
        return _run(settings, args)
    except (InputFileError, FileNotFoundError) as error:
        print(f"rwe review {args.review_command}: {error}", file=sys.stderr)
        return 2


def _run(settings, args: argparse.Namespace) -> int:
    if args.review_command == "export":
        now = dt.datetime.now(dt.UTC)
        out = args.out or settings.data_dir / "review" / f"pending-{now:%Y%m%dT%H%M%SZ}.csv"
        rows = export_pending(_connection(settings), settings.lake_dir, out)
        audit.record(settings, "export", {"kind": "clerical_review", "pairs": rows})
        print(f"wrote {rows} pending pairs to {out} (mode 0600: it holds PII, keep it in the trusted zone)")
        print(
            "fill `decision` with match or non_match (empty: still pending), optionally `note` and "
            f"`reviewer`; then: rwe review import {out}"
        )
        return 0
    if args.review_command == "import":
        return _run_import(settings, args)
    for line in status_lines(review_status(settings.lake_dir)):
        print(line)
    return 0


def _run_import(settings, args: argparse.Namespace) -> int:
    reviewer = args.reviewer or getpass.getuser()
    with lake_lock(settings.data_dir, "rwe review import", on_wait=_say_waiting):
        try:
            result = import_decisions(
                _connection(settings), settings.lake_dir, args.file, reviewer, revise=args.revise
            )
        except ReviewFileError as error:
            print(f"rwe review import: nothing imported; {len(error.problems)} problems:", file=sys.stderr)
            for problem in error.problems[:MAX_ERRORS_SHOWN]:
                print(f"  {problem}", file=sys.stderr)
            if len(error.problems) > MAX_ERRORS_SHOWN:
                print(f"  ... and {len(error.problems) - MAX_ERRORS_SHOWN} more", file=sys.stderr)
            return 2
    decided = ", ".join(f"{n} {d}" for d, n in sorted(result.decisions.items())) or "none"
    print(
        f"imported {sum(result.decisions.values())} decisions ({decided}); {result.left_pending} rows "
        "left empty stay pending. They take effect at the next linkage run: rwe ingest"
    )
    return 0


def _connection(settings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit}'")
    return con


def register_review_tables(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> None:
    """TEMP TABLES rv_review (the last run's review pairs), rv_pairs (every pair the last run kept) and
    rv_decided (the newest reviewer decision per pair), each with pair_id; rv_pending: the review pairs
    no reviewer decided since (a pair decided before a run is not in its review table)."""
    linkage_dir = lake.table_path(lake_dir, "linkage")
    ids = "NULL::VARCHAR AS record_id_l, NULL::VARCHAR AS record_id_r"
    for name, table, empty in (
        ("rv_review", "clerical_review", f"{ids}, NULL::DOUBLE AS match_probability, NULL::DOUBLE AS match_weight, NULL::BOOLEAN AS household_conflict"),
        ("rv_pairs", "pairs", f"{ids}, NULL::VARCHAR AS decision, NULL::VARCHAR AS method"),
        ("rv_decisions", "clerical_decisions", f"{ids}, NULL::VARCHAR AS decision, NULL::TIMESTAMPTZ AS decided_at"),
    ):  # fmt: skip
        if not lake.register_view(con, f"{name}_delta", linkage_dir / table):
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name}_delta AS SELECT {empty} LIMIT 0")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * REPLACE (least(record_id_l, record_id_r) AS "
            f"record_id_l, greatest(record_id_l, record_id_r) AS record_id_r) FROM {name}_delta"
        )
        con.execute(
            f"ALTER TABLE {name} DROP COLUMN IF EXISTS pair_id; ALTER TABLE {name} ADD COLUMN pair_id VARCHAR; "
            f"UPDATE {name} SET pair_id = {PAIR_ID_SQL}"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rv_decided AS SELECT pair_id, arg_max(decision, decided_at) AS decision, "
        "max(decided_at) AS decided_at FROM rv_decisions GROUP BY pair_id"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rv_pending AS SELECT * FROM rv_review ANTI JOIN rv_decided USING (pair_id)"
    )


def export_pending(con: duckdb.DuckDBPyConnection, lake_dir: Path, out: Path) -> int:
    """Write the pending pairs to `out` (created 0600; an existing file is never overwritten: it may
    hold decisions); returns the number of pairs."""
    register_review_tables(con, lake_dir)
    register_staged_persons(con, lake_dir, "rv_pii")
    present = {row[0] for row in con.execute("DESCRIBE SELECT * FROM rv_pii").fetchall()}
    pending_columns = [r[0] for r in con.execute("DESCRIBE SELECT * FROM rv_pending").fetchall()]
    weights = [c for c in pending_columns if c.startswith("mw_")]
    # why clustering held a link the model accepted (cluster.hold_bridges, conflicts.split_conflicts)
    hold_reason = "p.hold_reason" if "hold_reason" in pending_columns else "NULL::VARCHAR"

    def listed(sign: str) -> str:
        return (
            "concat_ws(' ', " + ", ".join(f"CASE WHEN {c} {sign} 0 THEN '{c[3:]}' END" for c in weights) + ")"
        )

    sides = ", ".join(
        f"{_shown(f, side, present) if f in present else 'NULL'} AS {f}_{side}"
        for f in SIDE_FIELDS
        for side in "lr"
    )
    table = con.sql(
        f"""
        SELECT p.pair_id, '' AS decision, '' AS note, '' AS reviewer,
               round(p.match_probability, 4) AS match_probability, round(p.match_weight, 2) AS match_weight,
               coalesce(p.household_conflict, false) AS household_conflict, {hold_reason} AS hold_reason,
               {listed(">") if weights else "''"} AS agree, {listed("<") if weights else "''"} AS disagree,
               {sides}
        FROM rv_pending p
        LEFT JOIN rv_pii l ON l.source_system || '|' || l.source_person_id = p.record_id_l
        LEFT JOIN rv_pii r ON r.source_system || '|' || r.source_person_id = p.record_id_r
        ORDER BY p.match_probability DESC, p.pair_id
        """
    ).to_arrow_table()
    if not out.parent.exists():
        permissions.ensure_private_dir(out.parent)
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputFileError(
            str(out), "exists: not overwritten (it may hold decisions); choose another --out"
        ) from None
    os.fchmod(descriptor, 0o600)  # whatever the umask
    with os.fdopen(descriptor, "wb") as handle:
        pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))
    return table.num_rows


def _shown(name: str, side: str, present: set[str]) -> str:
    """The SQL of one field of one side as a reviewer sees it."""
    value = f"{side}.{name}"
    if (
        name == "birth_date" and {"birth_year", "birth_month"} <= present
    ):  # a partial date: year-month or year
        return (
            f"coalesce(CAST({value} AS VARCHAR), {side}.birth_year || '-' || lpad(CAST({side}.birth_month AS "
            f"VARCHAR), 2, '0'), CAST({side}.birth_year AS VARCHAR))"
        )
    if name in MASKED:
        clean = f"regexp_replace(CAST({value} AS VARCHAR), '[^0-9A-Za-z]', '', 'g')"
        return f"CASE WHEN length({clean}) >= 8 THEN '*' || right({clean}, 4) WHEN {value} IS NOT NULL THEN '*' END"
    return f"CAST({value} AS VARCHAR)"


def import_decisions(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    path: Path,
    reviewer: str,
    *,
    revise: bool = False,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Validate every row of `path`, then append its decisions to linkage/clerical_decisions in one
    transaction. Raises ReviewFileError (nothing appended) when any row is bad."""
    rows, left_pending, problems = _read_file(path)
    register_review_tables(con, lake_dir)
    con.register("rv_file", pa.Table.from_pylist(rows, schema=_FILE_SCHEMA))
    allowed = "f.pair_id IN (SELECT pair_id FROM rv_pending)" + (
        " OR f.pair_id IN (SELECT pair_id FROM rv_decided)" if revise else ""
    )
    checked = con.execute(
        f"""
        SELECT f.line, CASE
            WHEN {allowed} THEN NULL
            WHEN f.pair_id IN (SELECT pair_id FROM rv_decided)
                THEN 'pair not pending: a reviewer decided it already (--revise changes a decision)'
            WHEN p.pair_id IS NOT NULL THEN 'pair not pending: the last linkage run decided it (' || p.decision
                || ', ' || p.method || ') without review'
            ELSE 'unknown pair: not among the pairs of the last linkage run (a file of another data '
                || 'directory, or an edited pair_id?)' END AS problem
        FROM rv_file f LEFT JOIN rv_pairs p USING (pair_id)
        ORDER BY f.line
        """
    ).fetchall()
    problems += [
        InputFileError(str(path), problem, line=line, field="pair_id") for line, problem in checked if problem
    ]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        audit.record_in(
            lake_dir, "review_decision", {"file_sha256": digest, "problems": len(problems)}, "refused"
        )
        raise ReviewFileError(str(path), problems)
    decided = con.execute(
        """
        SELECT p.record_id_l, p.record_id_r, f.decision, ?::TIMESTAMPTZ AS decided_at,
               coalesce(f.reviewer, ?) AS decided_by, f.note, f.pair_id, p.match_probability,
               ? AS review_file_sha256
        FROM rv_file f JOIN rv_pairs p USING (pair_id) ORDER BY f.line
        """,
        [now or dt.datetime.now(dt.UTC), reviewer, digest],
    ).to_arrow_table()
    if decided.num_rows:
        with permissions.private_umask():
            lake.append(
                lake.table_path(lake_dir, "linkage", "clerical_decisions"), decided.cast(DECISIONS_SCHEMA)
            )
    counts = {d: decided.column("decision").to_pylist().count(d) for d in DECISIONS}
    audit.record_in(
        lake_dir,
        "review_decision",
        {
            "file_sha256": digest,
            **{f"decided_{d}": n for d, n in counts.items()},
            "left_pending": left_pending,
        },
    )
    return ImportResult(counts, left_pending, digest)


def _read_file(path: Path) -> tuple[list[dict], int, list[InputFileError]]:
    """The decided rows of a review file (line, pair_id, decision, note, reviewer), how many rows were
    left undecided, and the problems found row by row. A review file is small (the grey zone), and its
    line numbers must be exact (a note may span lines), hence the csv module."""
    where = str(path)
    rows, seen, problems, undecided = [], {}, [], 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("pair_id", "decision") if c not in (reader.fieldnames or ())]
            if missing:
                return [], 0, [InputFileError(where, "missing column", line=1, field=c) for c in missing]
            for row in reader:
                line = reader.line_num
                values = {c: (row.get(c) or "").strip() or None for c in INPUT_COLUMNS}
                decision = values["decision"]
                if decision is None:
                    undecided += 1
                    continue
                if decision.lower() not in DECISIONS:
                    problems.append(
                        InputFileError(
                            where, "expected match, non_match or empty", line=line, field="decision"
                        )
                    )
                    continue
                if values["pair_id"] is None:
                    problems.append(InputFileError(where, "empty", line=line, field="pair_id"))
                    continue
                if values["pair_id"] in seen:
                    problems.append(
                        InputFileError(
                            where,
                            f"the pair is decided on line {seen[values['pair_id']]} too",
                            line=line,
                            field="pair_id",
                        )
                    )
                    continue
                seen[values["pair_id"]] = line
                rows.append({**values, "decision": decision.lower(), "line": line})
    except FileNotFoundError:
        raise InputFileError(where, "no such file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        kind = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "not a CSV file"
        raise InputFileError(where, kind) from None
    return rows, undecided, problems


def review_status(lake_dir: Path) -> dict[str, int]:
    """Counts: pairs pending review (and with a household conflict among them), review pairs decided
    since the last run, decisions recorded (by value), pairs the last run settled by a decision."""
    con = duckdb.connect()
    register_review_tables(con, lake_dir)
    return dict(
        zip(
            ("pending", "pending_household_conflict", "decided_waiting_for_run", "decisions_recorded",
             "decisions_match", "decisions_non_match", "pairs_settled_by_reviewers"),
            con.execute(
                """
                SELECT (SELECT count(*) FROM rv_pending),
                       (SELECT count(*) FROM rv_pending WHERE household_conflict),
                       (SELECT count(*) FROM rv_review SEMI JOIN rv_decided USING (pair_id)),
                       (SELECT count(*) FROM rv_decisions),
                       (SELECT count(*) FROM rv_decided WHERE decision = 'match'),
                       (SELECT count(*) FROM rv_decided WHERE decision = 'non_match'),
                       (SELECT count(*) FROM rv_pairs WHERE method = 'clerical')
                """
            ).fetchone(),
            strict=True,
        )
    )  # fmt: skip


def status_lines(counts: dict[str, int]) -> list[str]:
    return [
        f"pairs pending review: {counts['pending']} (household conflict: {counts['pending_household_conflict']})",
        f"decided since the last linkage run, applied by the next one: {counts['decided_waiting_for_run']}",
        f"decisions recorded: {counts['decisions_recorded']} rows; pairs decided: match "
        f"{counts['decisions_match']}, non_match {counts['decisions_non_match']} (the newest decision per pair)",
        f"pairs of the last run settled by a reviewer's decision: {counts['pairs_settled_by_reviewers']}",
    ]


def _say_waiting(message: str) -> None:
    print(f"rwe review import: {message}", file=sys.stderr)
