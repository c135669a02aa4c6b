"""The landing zone: which batches have arrived, and whether they are done arriving.

A batch is a folder (or a single file) directly under data/landing/<source>/. Its id is the folder or
file name. A batch is ready once none of its files changed for the settle time, so a copy still in
progress is not picked up half-way. Names starting with '.' or '_' are markers, never batches.

The landing zone is a boundary: nothing outside it is read. A batch entry that is a symbolic link, or
whose resolved path leaves landing/<source>/, is not a batch; nor is a name that is not a valid batch
id. `invalid_batches` lists them with the reason, for every command to print; `resolve_batch` is the
one way from a (source, batch id) pair, as a partition key carries it, to a path, and refuses the
same things (a key typed into the launchpad never passed the sensor). Symlinks inside a batch folder
are refused per file by the raw ingest (manifest status `refused`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rwe_assets.errors import InputFileError
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


# Reason codes of entries under landing/<source>/ that are not batches.
INVALID_NAME = "INVALID_BATCH_NAME"
SYMLINK = "SYMLINK_REFUSED"
OUTSIDE = "OUTSIDE_LANDING_ZONE"
_REASONS = {
    INVALID_NAME: "not a valid batch name (letters, digits, '.', '-', '_'; at most 200; no '__'): not read",
    SYMLINK: "a symbolic link: the landing zone reads no links (copy the files in): not read",
    OUTSIDE: "resolves to a path outside the landing zone: not read",
}


@dataclass(frozen=True)
class InvalidBatch:
    source: str
    name: str
    reason_code: str

    def describe(self) -> str:
        return f"landing/{self.source}/{self.name}: {self.reason_code}: {_REASONS[self.reason_code]}"


def entry_problem(root: Path, entry: Path) -> str | None:
    """Why an entry of landing/<source>/ cannot be a batch (a reason code), or None."""
    if not is_valid_batch_id(entry.name):
        return INVALID_NAME
    if entry.is_symlink():
        return SYMLINK
    if not entry.resolve().is_relative_to(root.resolve()):
        return OUTSIDE  # e.g. a bind mount or a parent folder that is itself a link
    return None


def list_batches(landing_dir: Path, source: str) -> tuple[list[LandedBatch], list[str]]:
    """Batches under landing/<source>/, and the names that are not batches (invalid_batches says why)."""
    root = Path(landing_dir) / source
    if not root.is_dir():
        return [], []
    batches, rejected = [], []
    for entry in _entries(root):
        if entry_problem(root, entry) is not None:
            rejected.append(entry.name)
            continue
        batch = _describe(source, entry)
        if batch is not None:
            batches.append(batch)
    return batches, rejected


def invalid_batches(landing_dir: Path, sources) -> list[InvalidBatch]:
    """Every entry under landing/<source>/ of the given sources (names or SourceSpecs) that is not
    read, with its reason: what `rwe ingest`, the sensor and `rwe doctor` print."""
    found = []
    for source in sources:
        name = getattr(source, "name", source)
        root = Path(landing_dir) / name
        if root.is_dir():
            for entry in _entries(root):
                problem = entry_problem(root, entry)
                if problem is not None:
                    found.append(InvalidBatch(name, entry.name, problem))
    return found


def _entries(root: Path) -> list[Path]:
    return [e for e in sorted(root.iterdir()) if not e.name.startswith((".", "_"))]


def resolve_batch(landing_dir: Path, source: str, batch_id: str) -> Path:
    """The path of batch `batch_id` of `source`, refused (InputFileError naming the reason code) when
    the id is not a valid batch id, or the entry is a link or resolves outside landing/<source>/."""
    where = f"landing/{source}/<batch>"
    if not is_valid_batch_id(source) or not is_valid_batch_id(batch_id):
        raise InputFileError(where, f"{INVALID_NAME}: {_REASONS[INVALID_NAME]}")
    root = Path(landing_dir) / source
    entry = root / batch_id
    if not entry.exists() and not entry.is_symlink():
        raise InputFileError(f"landing/{source}/{batch_id}", "expected a batch folder or file, found nothing")
    problem = entry_problem(root, entry)
    if problem is not None:
        raise InputFileError(f"landing/{source}/{batch_id}", f"{problem}: {_REASONS[problem]}")
    return entry


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
