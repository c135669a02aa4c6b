"""`rwe rotate-key`: re-key the linkage tokens with a new key; every person_id stays
(docs/operations.md, "Rotating the linkage key").

Only linkage/tokens depends on the key: pairs, decisions, the crosswalk and the model hold record ids,
weights and m/u, and a run tells a record it has linked before by (record id, fingerprint of its
tokens). Rotation recomputes each record's tokens under the old key and under the new one; where the
old fingerprint equals the stored one (the record is as it was linked) the new tokens replace it, so
the next run, with the new key, finds every record unchanged, reuses its pairs and keeps the crosswalk
as it is, while a new batch is compared with the records' new tokens. A record that changed (or
arrived) since the last run is left out of the new table: the next run scores it as new, as it would
have anyway. Rescoring everything under the new key instead would not be the same: Bloom filters set
other bits under another key, so a similarity near a threshold could move a pair across it.

The new tokens are written as a new Delta table (no history under the old key), then swapped in after
the key is saved; the old table, its history included, is deleted. A rotation interrupted after the key
was saved is finished by the next `rwe rotate-key` (a check file tells which key the new tokens need);
one interrupted before is discarded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.governance import audit, permissions, tombstone
from rwe_assets.lib.governance.tombstone import tombstone_path
from rwe_assets.lib.lake_lock import lake_lock
from rwe_assets.lib.linkage.crosswalk import WRITE_BATCH_ROWS, register_staged_persons, tokenize
from rwe_assets.lib.linkage.keys import DEMO_KEY, MIN_KEY_BYTES, TOMBSTONE_KEY_VARIABLE
from rwe_assets.lib.linkage_key import KEY_BYTES

HELP = "re-key the linkage tokens with a new linkage key; every person_id stays"
NEW_KEY_VARIABLE = "RWE_NEW_LINKAGE_KEY"
KEY_VARIABLE = "RWE_LINKAGE_KEY"
ROTATING, RETIRED = "tokens.rotating", "tokens.retired"
CHECK = "tokens.rotating.check"  # an HMAC of a fixed text under the new key: which key the new tokens need


@dataclass(frozen=True)
class Rotation:
    rekeyed: int  # records whose stored tokens now carry the new key
    left_for_next_run: int  # staged records new or changed since the last run: scored by the next one
    no_longer_staged: int  # stored records staging no longer holds: dropped, as the next run would


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--new-key-from-env",
        action="store_true",
        help=f"take the new key from {NEW_KEY_VARIABLE} (needed when {KEY_VARIABLE} is set in the "
        "environment, e.g. from a secret store) instead of generating one",
    )


def run(settings, args: argparse.Namespace) -> int:
    from rwe_assets.lib.staging.build import staging_connection

    in_environment = bool(os.environ.get(KEY_VARIABLE))
    old_key = settings.linkage_key
    lake.require_local(settings.lake_dir, "rotate-key")  # swaps linkage/tokens by folder rename
    with lake_lock(settings.data_dir, "rwe rotate-key", on_wait=_say_waiting):
        if old_key and resume(settings.lake_dir, old_key):
            print("finished an interrupted rotation: the new key was saved, its tokens are now in place")
            return 0
        new_key = _new_key(old_key, in_environment, args.new_key_from_env)
        pinned = _tombstone_key_to_pin(settings, in_environment)
        con = staging_connection(settings.duckdb_memory_limit, settings.duckdb_threads)
        rotation = prepare(con, settings.lake_dir, old_key, new_key)
        if not in_environment:
            write_key(settings.env_file, new_key, tombstone_key=pinned)
        swap_in(settings.lake_dir)
    where = "environment" if in_environment else "env_file"
    audit.record(settings, "key_rotation", {"key_location": where, **rotation.__dict__})
    print(
        f"re-keyed the tokens of {rotation.rekeyed} records; every person_id stays "
        f"({rotation.left_for_next_run} records new or changed since the last run are scored by the next one)"
    )
    if in_environment:
        print(
            f"now set {KEY_VARIABLE} to the new key (the value of {NEW_KEY_VARIABLE}) wherever it is set, and "
            f"restart the UI and daemon; a run with the old key would re-tokenize everything with it (ids stay)"
        )
    else:
        print(f"the new key is in {settings.env_file} (mode 0600); the old key no longer links anything")
    return 0


def _new_key(old_key: str | None, in_environment: bool, from_env: bool) -> str:
    if not old_key or old_key == DEMO_KEY:
        raise ConfigError(
            "the lake is linked with the public demo key: there is no secret key to rotate; `rwe init` writes "
            "a first key (the next run re-tokenizes with it)"
        )
    if in_environment and not from_env:
        raise ConfigError(
            f"{KEY_VARIABLE} is set in the environment, which this command cannot change: put a new key "
            f"(at least {MIN_KEY_BYTES} bytes) in {NEW_KEY_VARIABLE}, run `rwe rotate-key --new-key-from-env`, "
            f"then set {KEY_VARIABLE} to it wherever it is set; nothing changed"
        )
    new_key = os.environ.get(NEW_KEY_VARIABLE, "") if from_env else secrets.token_hex(KEY_BYTES)
    if len(new_key.encode()) < MIN_KEY_BYTES or new_key == DEMO_KEY:
        raise ConfigError(
            f"{NEW_KEY_VARIABLE}: expected a secret of at least {MIN_KEY_BYTES} bytes; nothing changed"
        )
    if new_key == old_key:
        raise ConfigError(f"{NEW_KEY_VARIABLE}: expected a key other than the current one; nothing changed")
    return new_key


def _tombstone_key_to_pin(settings, in_environment: bool) -> str | None:
    """The old linkage key, when erasure tombstones were made with it (no RWE_TOMBSTONE_KEY set): they
    cannot be re-keyed (the erased identities are gone), so it stays on as their own key, or erased
    persons could come back. None when there is nothing to keep."""
    if settings.tombstone_key:
        return None
    held = lake.read_table(tombstone_path(settings.lake_dir), columns=["kind"])
    if held is None or held.num_rows == 0:
        return None
    tombstone.check_key(settings.lake_dir, settings.linkage_key)  # they were made with the current key
    if in_environment:
        raise ConfigError(
            f"the lake holds {held.num_rows} erasure tombstones keyed with the current {KEY_VARIABLE}, which "
            f"cannot be re-keyed: first set {TOMBSTONE_KEY_VARIABLE} to the current value of {KEY_VARIABLE} "
            "wherever that is set (tombstones keep it as their own key), then rotate; nothing changed"
        )
    return settings.linkage_key


def prepare(
    con: duckdb.DuckDBPyConnection, lake_dir: Path, old_key: str, new_key: str, today: dt.date | None = None
) -> Rotation:
    """Write linkage/tokens.rotating: the stored records, still as linked, with new-key tokens."""
    linkage_dir = lake.table_path(lake_dir, "linkage")
    _remove_leftovers(linkage_dir)
    stored = lake.read_table(linkage_dir / "tokens", columns=["record_id", "fingerprint"])
    if stored is None:
        return Rotation(0, 0, 0)  # nothing linked yet: the key alone changes
    register_staged_persons(con, lake_dir)
    con.register("rk_stored", stored)
    tokenize(con, old_key, today)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rk_same AS SELECT record_id FROM lk_tokens SEMI JOIN rk_stored "
        "USING (record_id, fingerprint)"
    )
    staged, same, gone = con.execute(
        "SELECT (SELECT count(*) FROM lk_tokens), (SELECT count(*) FROM rk_same), "
        "(SELECT count(*) FROM rk_stored ANTI JOIN lk_tokens USING (record_id))"
    ).fetchone()
    if stored.num_rows and not same:
        raise ConfigError(
            f"none of the {stored.num_rows} stored token fingerprints was made with the configured "
            f"{KEY_VARIABLE}: is it the key the lake was linked with (or was the lake linked before "
            "2026-12-07, whose fingerprints were md5s: run linkage once, then rotate)? nothing changed"
        )
    tokenize(con, new_key, today)
    reader = con.sql("SELECT * FROM lk_tokens SEMI JOIN rk_same USING (record_id)").fetch_record_batch(
        WRITE_BATCH_ROWS
    )
    with permissions.private_umask():
        lake.write(linkage_dir / ROTATING, reader, mode="error")
        (linkage_dir / CHECK).write_text(key_check(new_key))
    return Rotation(same, staged - same, gone)


def key_check(key: str) -> str:
    """Tells whether a key is the one new tokens were made with, without revealing it."""
    return hmac.new(key.encode(), b"rwe rotate-key check", hashlib.sha256).hexdigest()


def resume(lake_dir: Path, key: str) -> bool:
    """Finish a rotation interrupted after its key was saved (the new tokens are complete and made with
    the configured key); otherwise remove what an interrupted rotation left. True when finished."""
    linkage_dir = lake.table_path(lake_dir, "linkage")
    check = linkage_dir / CHECK
    if (
        lake.exists(linkage_dir / ROTATING)
        and check.exists()
        and hmac.compare_digest(check.read_text(), key_check(key))
    ):
        swap_in(lake_dir)
        return True
    _remove_leftovers(linkage_dir)
    return False


def _remove_leftovers(linkage_dir: Path) -> None:
    for leftover in (linkage_dir / ROTATING, linkage_dir / RETIRED):
        shutil.rmtree(leftover, ignore_errors=True)
    (linkage_dir / CHECK).unlink(missing_ok=True)


def swap_in(lake_dir: Path) -> None:
    """Replace linkage/tokens by tokens.rotating and delete the old table with its history. A crash
    between the two renames leaves no tokens table: the next run then rescores every record (ids stay)."""
    linkage_dir = lake.table_path(lake_dir, "linkage")
    if not (linkage_dir / ROTATING).exists():
        return
    if (linkage_dir / "tokens").exists():
        (linkage_dir / "tokens").rename(linkage_dir / RETIRED)
    (linkage_dir / ROTATING).rename(linkage_dir / "tokens")
    _remove_leftovers(linkage_dir)


def write_key(env_file: Path, key: str, tombstone_key: str | None = None) -> None:
    """Set RWE_LINKAGE_KEY (and RWE_TOMBSTONE_KEY when given) in the env file, keeping its other lines;
    the file is replaced atomically by one created 0600, so no reader sees half a file or a readable key."""
    settings = {KEY_VARIABLE: key, **({TOMBSTONE_KEY_VARIABLE: tombstone_key} if tombstone_key else {})}
    lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.exists() else []
    kept = [
        line
        for line in lines
        if line.strip().removeprefix("export ").partition("=")[0].strip() not in settings
        and not line.startswith(f"# {KEY_VARIABLE} rotated")
    ]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    assignments = [f"{name}={value}" for name, value in settings.items()]
    text = "\n".join([*kept, f"# {KEY_VARIABLE} rotated {stamp} by `rwe rotate-key`", *assignments])
    temporary = env_file.with_name(f".{env_file.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, env_file)


def _say_waiting(message: str) -> None:
    print(f"rwe rotate-key: {message}", file=sys.stderr)
