"""The linkage key before ingest: refuse to land data the key cannot protect, and write a key on the
first run.

Linkage tokens are keyed HMACs over names, birth dates and addresses (docs/linkage.md). Without a
secret key the pipeline links with the public demo key (lib/linkage/keys.py), which is fine for the
bundled sample and the generated population and wrong for anything else. lib/linkage/keys.py refuses the
demo key at linkage time, deep in the build, once a batch is already in the lake; this module answers
the same question before anything is ingested, so the person gets the fix at the moment they land data:

- a batch waiting in the landing zone that is not demo data, and no key (or the demo key itself) -> refused;
- records in the lake that are not demo data, and no key -> refused, even when the landing zone is now
  clean: the files have left the landing zone but their records still need a secret key.

"Demo data" is what keys.py calls so: a file the generator lists in <data>/truth/expected_counts.csv, or
a file byte-identical to one of the bundled sample in data/sample/. For the lake the ingest manifest
stands in for the files (its path and sha256), so no landed file needs to exist any more.

`rwe init` writes a key (and a tombstone key, lib/linkage/keys.tombstone_key): 32 random bytes from the secrets module (hex), into <data>/rwe.env with mode
0600, which Settings.from_env reads (rwe_assets/settings.py).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from rwe_assets.lib.landing import LandedBatch
from rwe_assets.lib.linkage.keys import DEMO_KEY, MIN_KEY_BYTES, REPO_SAMPLE_DIR, generated_files, sha256_file
from rwe_assets.lib.raw_ingest import batch_files, read_manifest
from rwe_assets.lib.truth_files import TRUTH_DIR
from rwe_assets.settings import Settings

KEY_BYTES = 32  # 256 bits, the HMAC-SHA256 block-size class of key; well above MIN_KEY_BYTES


def fix_hint(settings: Settings) -> str:
    return (
        f"fix: run `rwe init` (writes a random key to {settings.env_file}, mode 0600, read by the "
        f"`rwe` command and the Dagster code location), or set RWE_LINKAGE_KEY to a secret of at least "
        f"{MIN_KEY_BYTES} bytes; then run the command again (the sensor retries by itself)"
    )


def demo_key_in_use(settings: Settings) -> bool:
    return not settings.linkage_key or settings.linkage_key == DEMO_KEY


def key_problem(
    settings: Settings, pending_batches: Iterable[LandedBatch], lake_has_non_demo: bool
) -> str | None:
    """Why nothing may be ingested with the configured key, or None when it may."""
    key = settings.linkage_key
    if key and key != DEMO_KEY:
        if len(key.encode()) < MIN_KEY_BYTES:
            return f"RWE_LINKAGE_KEY is shorter than {MIN_KEY_BYTES} bytes; {fix_hint(settings)}"
        return None
    state = "is the public demo key" if key else "is not set"
    if lake_has_non_demo:
        return (
            f"RWE_LINKAGE_KEY {state} and the lake holds records that are not demo data: linking them with "
            f"the public demo key is refused; nothing was ingested; {fix_hint(settings)}"
        )
    foreign = [batch for batch in pending_batches if not is_demo_batch(settings, batch)]
    if foreign:
        named = ", ".join(f"{batch.source}/{batch.batch_id}" for batch in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return (
            f"RWE_LINKAGE_KEY {state} and landed batch {named}{more} is not demo data (neither generated nor "
            f"the bundled sample): refused before ingest, nothing was ingested; {fix_hint(settings)}"
        )
    return None


def check_before_ingest(settings: Settings, pending_batches: Iterable[LandedBatch]) -> str | None:
    """key_problem with the lake looked at only when the demo key is in use (the manifest read is the cost)."""
    lake_foreign = demo_key_in_use(settings) and bool(lake_non_demo_files(settings))
    return key_problem(settings, pending_batches, lake_foreign)


def is_demo_batch(settings: Settings, batch: LandedBatch, sample_dir: Path = REPO_SAMPLE_DIR) -> bool:
    generated = generated_files(settings.data_dir / TRUTH_DIR)
    bundled = _bundled_files(sample_dir)
    root = settings.landing_dir / batch.source / batch.batch_id
    return all(_is_demo_file(settings.data_dir, path, generated, bundled) for path in batch_files(root))


def lake_non_demo_files(settings: Settings, sample_dir: Path = REPO_SAMPLE_DIR) -> list[str]:
    """Manifest paths (relative to the landing zone) of files whose records are in the lake and that are
    not demo data; [] when there are none."""
    generated = generated_files(settings.data_dir / TRUTH_DIR)
    bundled_hashes = set(_bundled_files(sample_dir).values())
    manifest = read_manifest(settings.lake_dir).select(
        ["relative_path", "file_sha256", "rows_stored", "rows_quarantined"]
    )
    return [
        row["relative_path"]
        for row in manifest.to_pylist()
        if (row["rows_stored"] or row["rows_quarantined"])
        and f"landing/{row['relative_path']}" not in generated
        and row["file_sha256"] not in bundled_hashes
    ]


def write_new_key(settings: Settings) -> Path:
    """Create the env file with a fresh key, owner-only from the first byte (O_EXCL: never overwrite a key,
    since tokens made with it would no longer match). Raises FileExistsError when the file exists."""
    tombstone_key = _key_of_existing_tombstones(settings) or secrets.token_hex(KEY_BYTES)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(settings.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(
            "# rwe_assets settings (rwe_assets/settings.py); written by `rwe init`. Keep this file secret:\n"
            "# RWE_LINKAGE_KEY keys the linkage tokens. Changing it makes earlier tokens unmatchable.\n"
            f"RWE_LINKAGE_KEY={secrets.token_hex(KEY_BYTES)}\n"
            "# RWE_TOMBSTONE_KEY keys erasure tombstones (`rwe erase`); it is never rotated.\n"
            f"RWE_TOMBSTONE_KEY={tombstone_key}\n"
        )
    return settings.env_file


def _key_of_existing_tombstones(settings: Settings) -> str | None:
    """The key the lake's erasure tombstones were made with (the demo key on a demo lake), kept on as
    RWE_TOMBSTONE_KEY: under a new key they would refuse no one. None when there are none."""
    from rwe_assets.lib import lake
    from rwe_assets.lib.governance.tombstone import tombstone_path
    from rwe_assets.lib.linkage.keys import tombstone_key

    held = lake.read_table(tombstone_path(settings.lake_dir), columns=["kind"])
    return tombstone_key(settings) if held is not None and held.num_rows else None


def _is_demo_file(
    data_dir: Path, path: Path, generated: set[str], bundled: dict[tuple[int, str], str]
) -> bool:
    if path.relative_to(data_dir).as_posix() in generated:
        return True
    size = path.stat().st_size
    # hash only what could be a bundled file: a batch of one's own data is rarely the size of one
    candidates = {sha for (bundled_size, _), sha in bundled.items() if bundled_size == size}
    return bool(candidates) and sha256_file(path) in candidates


@cache  # the bundled sample is part of the installed repository: hashed once per process
def _bundled_files(sample_dir: Path) -> dict[tuple[int, str], str]:
    """(size, relative path) -> sha256 of every file of the bundled sample."""
    if not sample_dir.exists():
        return {}
    return {
        (path.stat().st_size, path.relative_to(sample_dir).as_posix()): sha256_file(path)
        for path in sample_dir.rglob("*")
        if path.is_file()
    }
