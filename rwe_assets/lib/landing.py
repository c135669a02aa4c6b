"""The landing zone: which batches have arrived, and whether they are done arriving.

A batch is a folder (or a single file) directly under data/landing/<source>/. Its id is the folder or
file name. A batch is ready once none of its files changed for the settle time, so a copy still in
progress is not picked up half-way. Names starting with '.' or '_' are markers, never batches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rwe_assets.lib.raw_ingest import batch_files

PARTITION_SEPARATOR = "__"
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class LandedBatch:
    source: str
    batch_id: str
    fingerprint: str  # changes when any file is added, removed, resized or rewritten
    newest_mtime: float
    file_count: int

    @property
    def partition_key(self) -> str:
        return partition_key(self.source, self.batch_id)


def partition_key(source: str, batch_id: str) -> str:
    return f"{source}{PARTITION_SEPARATOR}{batch_id}"


def parse_partition_key(key: str) -> tuple[str, str]:
    source, separator, batch_id = key.partition(PARTITION_SEPARATOR)
    if not separator or not source or not batch_id:
        raise ValueError(f"expected a partition key '<source>__<batch>', found {key!r}")
    return source, batch_id


def is_valid_batch_id(name: str) -> bool:
    return bool(_BATCH_ID.match(name)) and PARTITION_SEPARATOR not in name


def list_batches(landing_dir: Path, source: str) -> tuple[list[LandedBatch], list[str]]:
    """Batches under landing/<source>/, and the names that cannot be batch ids (to report)."""
    root = Path(landing_dir) / source
    if not root.is_dir():
        return [], []
    batches, rejected = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if not is_valid_batch_id(entry.name):
            rejected.append(entry.name)
            continue
        batch = _describe(source, entry)
        if batch is not None:
            batches.append(batch)
    return batches, rejected


def _describe(source: str, entry: Path) -> LandedBatch | None:
    files = batch_files(entry)
    if not files:
        return None
    digest, newest = hashlib.sha256(), 0.0
    for path in files:
        stat = path.stat()
        newest = max(newest, stat.st_mtime)
        digest.update(f"{path.relative_to(entry.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return LandedBatch(source, entry.name, digest.hexdigest()[:16], newest, len(files))
