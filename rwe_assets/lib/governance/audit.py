"""The audit trail: an append-only, hash-chained Delta table of who did what to the data, and when.

<lake>/audit/trail has one row per action (ACTIONS): seq (1, 2, 3, ... without gaps), at (UTC), who
(the OS user, or the Dagster run's user tag, and what launched the run), action, what (JSON text of
paths, counts, run ids), outcome, run_id, prev_hash and hash. hash is the sha256 of the row's
canonical JSON (every column but hash, in schema order) and is the next row's prev_hash; the first
row's prev_hash is GENESIS. verify_chain recomputes every hash, so a row altered, deleted, inserted or
reordered breaks it; a deleted tail does not break a chain, so verify_chain also takes an anchor (a
seq and hash seen earlier, e.g. in the audit asset's last materialization) and reads the Delta history
for anything but appends, compaction, vacuum and table properties. Every COMPACT_AT_FILES appends the
table is compacted (rows unchanged), so reads stay fast.

`what` must never hold a PII value (a name, an identifier, a birth date, a token): only paths under the
data directory, counts, sha256 digests of files, ids the pipeline made (run ids, batch ids, person_id
counts). record() enforces the shape (a flat dict of str/int/float/bool/None or lists of them, short
strings) but cannot tell a name from a path: callers keep values out.

Appends are serialized by their own lock file (<data>/.rwe-audit.lock), not the lake lock: a review
decision or an export recorded while a build holds the lake for an hour must not wait for it, and the
append itself takes milliseconds. Under that lock the last row is read (through the files' seq
statistics, not a scan), so seq has no gaps and the chain no forks.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rwe_assets.lib import lake
from rwe_assets.lib.governance import permissions

ACTIONS = (
    "ingest",
    "build",
    "publish",
    "export",
    "erasure",
    "key_rotation",
    "review_decision",
    "retention",
)
GENESIS = "0" * 64
TRAIL = ("audit", "trail")
LOCK_NAME = ".rwe-audit.lock"
COMPACT_AT_FILES = 200
MAX_TEXT = 2048  # a longer string in `what` is data, not a path or a count
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Delta operations an append-only table may show in its history (vacuum and compaction keep rows).
# Retention's table properties change no row either.
_ALLOWED_OPERATIONS = {
    "CREATE TABLE",
    "WRITE (Append)",
    "OPTIMIZE",
    "VACUUM START",
    "VACUUM END",
    "SET TBLPROPERTIES",
}

SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("who", pa.string()),
        ("action", pa.string()),
        ("what", pa.string()),
        ("outcome", pa.string()),
        ("run_id", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)
_HASHED = [name for name in SCHEMA.names if name != "hash"]


class AuditError(ValueError):
    """A record() call that would put something other than paths, counts and ids in the trail."""


def trail_path(lake_dir: Path) -> Path:
    return lake.table_path(lake_dir, *TRAIL)


def record(settings, action: str, what: dict, outcome: str = "ok", run_id: str | None = None) -> None:
    """Append one row to the audit trail of `settings.lake_dir` (see the module docstring)."""
    record_in(settings.lake_dir, action, what, outcome, run_id)


def record_in(
    lake_dir: Path, action: str, what: dict, outcome: str = "ok", run_id: str | None = None
) -> None:
    """record() for callers that know the lake directory but not the settings (lib/raw_ingest)."""
    text = _what_json(action, what, outcome)
    who, context_run = _who()
    path = trail_path(lake_dir)
    with _append_lock(lake.state_dir(lake_dir)), permissions.private_umask():
        permissions.ensure_private_dir(path.parent)
        seq, prev_hash = _head(path)
        row = {
            "seq": seq + 1,
            "at": datetime.now(UTC),
            "who": who,
            "action": action,
            "what": text,
            "outcome": outcome,
            "run_id": run_id or context_run,
            "prev_hash": prev_hash,
        }
        row["hash"] = row_hash(row)
        lake.append(path, pa.Table.from_pylist([row], schema=SCHEMA))
        _compact_if_fragmented(path)


def read_trail(settings) -> pa.Table:
    """The whole trail in seq order (an empty table with SCHEMA when nothing was recorded yet)."""
    return read_trail_in(settings.lake_dir)


def read_trail_in(lake_dir: Path) -> pa.Table:
    table = lake.read_table(trail_path(lake_dir))
    return SCHEMA.empty_table() if table is None else table.sort_by("seq")


def verify_chain(settings, anchor: tuple[int, str] | None = None) -> list[str]:
    """Problems found in the trail ([] when the chain holds). anchor: (seq, hash) recorded earlier;
    the trail must still hold that row with that hash (a deleted tail leaves no break otherwise)."""
    return verify_chain_in(settings.lake_dir, anchor)


def verify_chain_in(lake_dir: Path, anchor: tuple[int, str] | None = None) -> list[str]:
    path = trail_path(lake_dir)
    try:
        rows = read_trail_in(lake_dir).to_pylist()
    except (OSError, pa.ArrowException) as error:  # a data file removed or rewritten by hand
        return [f"audit trail unreadable: {type(error).__name__}: {str(error)[:200]}"]
    problems = _history_problems(path)
    expected_prev = GENESIS
    # One row per action, not per data row (thousands, verified in ~0.1 s per 1,000): a plain loop
    # keeps the canonical JSON in one place (row_hash), shared with record().
    for number, row in enumerate(rows, start=1):
        if row["seq"] != number:
            problems.append(f"row {number}: seq {row['seq']} where {number} was expected (gap or reorder)")
            break
        if row["prev_hash"] != expected_prev:
            problems.append(f"seq {number}: prev_hash does not match the hash of seq {number - 1}")
        if row_hash(row) != row["hash"]:
            problems.append(f"seq {number}: hash does not match the row (altered)")
        expected_prev = row["hash"]
    if anchor is not None:
        seq, digest = anchor
        if seq > len(rows):
            problems.append(f"anchor seq {seq} is missing: the trail ends at seq {len(rows)} (truncated)")
        elif seq > 0 and rows[seq - 1]["hash"] != digest:
            problems.append(f"anchor seq {seq}: hash differs from the one recorded earlier")
    return problems


def row_hash(row: dict) -> str:
    """sha256 of the row's canonical JSON: the columns before `hash`, in schema order."""
    values = [row[name] for name in _HASHED]
    values[1] = _utc_text(values[1])
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def head(lake_dir: Path) -> tuple[int, str]:
    """(seq, hash) of the last row; (0, GENESIS) for an empty trail."""
    return _head(trail_path(lake_dir))


def _head(path: Path) -> tuple[int, str]:
    """The last row, read from the one file whose statistics hold the largest seq (a scan of the
    whole table costs about 1 ms per file: 1 s at 1,000 appends)."""
    table = lake.open_table(path)
    if table is None:
        return 0, GENESIS
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0, GENESIS
    if "max.seq" in actions.column_names and actions.column("max.seq").null_count == 0:
        newest = pc.index(actions.column("max.seq"), pc.max(actions.column("max.seq"))).as_py()
        rows = lake.read_parquet_file(path / actions.column("path")[newest].as_py(), columns=["seq", "hash"])
    else:  # a file without statistics: scan
        rows = table.to_pyarrow_dataset().to_table(columns=["seq", "hash"])
    last = rows.sort_by([("seq", "descending")]).slice(0, 1).to_pylist()[0]
    return last["seq"], last["hash"]


def _compact_if_fragmented(path: Path) -> None:
    """One file per append makes every read open thousands of files: rewrite them into one now and
    then. Compaction keeps every row as it is, so the chain holds (retention vacuums the old files)."""
    table = lake.open_table(path)
    if table is not None and len(table.file_uris()) >= COMPACT_AT_FILES:
        table.optimize.compact()


def _history_problems(path: Path) -> list[str]:
    table = lake.open_table(path)
    if table is None:
        return []
    problems = []
    for entry in table.history():
        operation = entry.get("operation")
        if operation == "WRITE":
            operation += f" ({(entry.get('operationParameters') or {}).get('mode')})"
        if operation not in _ALLOWED_OPERATIONS:
            problems.append(f"Delta version {entry.get('version')}: {operation} on an append-only table")
    return problems


def _what_json(action: str, what: dict, outcome: str) -> str:
    if action not in ACTIONS:
        raise AuditError(f"unknown audit action {action!r}; expected one of {', '.join(ACTIONS)}")
    if not _OUTCOME.fullmatch(outcome or ""):
        raise AuditError("outcome: expected a short lower-case word such as ok, failed, refused")
    if not isinstance(what, dict):
        raise AuditError(f"what: expected a dict, found {type(what).__name__}")
    for key, value in what.items():
        if not isinstance(key, str):
            raise AuditError("what: keys must be strings")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is not None and not isinstance(item, str | int | float | bool):
                raise AuditError(f"what[{key!r}]: {type(item).__name__} is not a str/int/float/bool/None")
            if isinstance(item, str) and len(item) > MAX_TEXT:
                raise AuditError(f"what[{key!r}]: a string of {len(item)} characters (limit {MAX_TEXT})")
    return json.dumps(what, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _who() -> tuple[str, str | None]:
    """(who, the current Dagster run id or None): the run's user tag when a Dagster step runs in this
    process (Dagster+ sets dagster/user), else the OS user; plus what launched the run."""
    user = _os_user()
    if "dagster" not in sys.modules:  # no step can be running: skip the import
        return user, None
    import dagster as dg

    try:
        context = dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:  # dagster imported, no step running here
        return user, None
    tags = context.run.tags
    user = tags.get("dagster/user") or tags.get("user") or user
    launcher = next(
        (f"{kind} {tags[tag]}" for tag, kind in _LAUNCH_TAGS if tags.get(tag)),
        "manual run",
    )
    return f"{user} ({launcher})", context.run_id


_LAUNCH_TAGS = (
    ("dagster/sensor_name", "sensor"),
    ("dagster/schedule_name", "schedule"),
    ("dagster/backfill", "backfill"),
    ("rwe/pid", "rwe command, pid"),
)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def _append_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, permissions.PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for milliseconds; the kernel drops it if we die
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
