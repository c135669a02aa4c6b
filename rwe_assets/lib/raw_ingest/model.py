"""The raw layer's vocabulary: table names, schemas, limits, file outcomes and provenance columns."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa

TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
PROVENANCE_FIELDS = [
    pa.field("_batch_id", pa.string()),
    pa.field("_source_file", pa.string()),  # path relative to the landing folder
    pa.field("_file_sha256", pa.string()),
    pa.field("_line_number", pa.int64()),  # physical line in the file; the header is line 1
    pa.field("_ingested_at", TIMESTAMP_UTC),
]
PROVENANCE_COLUMNS = tuple(f.name for f in PROVENANCE_FIELDS)
MANIFEST = "_manifest"
QUARANTINE = "_quarantine"
VCF_HEADER = "vcf_header"  # header lines of every VCF of a source, beside its call entity
CSV_BATCH_ROWS = 122_880  # a multiple of DuckDB's vector size
# DuckDB memory of one CSV's parse (csv_files._parse): past it the parsed rows spill to <lake>/_work/ingest.
# DuckDB's CSV reader holds buffers of 16 x max_line_size (256 MiB here) per thread: keep well above.
CSV_MEMORY_LIMIT = "2GB"
NDJSON_BATCH_ROWS = 20_000
READ_CHUNK = 8 << 20
# Longest text line (a CSV row, an NDJSON resource, a header) read as a record. Larger lines are not
# records a site means to send (a FHIR resource carrying a base64 document belongs in a Binary store):
# quarantined as LINE_TOO_LONG, so one such line cannot take gigabytes of memory.
MAX_LINE_BYTES = 16 << 20

MANIFEST_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("batch_id", pa.string()),
        ("relative_path", pa.string()),
        ("file_sha256", pa.string()),
        ("size_bytes", pa.int64()),
        ("lines_read", pa.int64()),
        ("records_read", pa.int64()),
        ("rows_stored", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("entities", pa.string()),
        ("status", pa.string()),
        ("file_version", pa.int64()),
        ("supersedes_sha256", pa.string()),
        ("error", pa.string()),
        ("run_id", pa.string()),
        ("ingested_at", TIMESTAMP_UTC),
        # Set by an erasure (lib/governance/erase.py), null until then: records read from the file =
        # records_read + rows_erased; landing_action tells the operator what to do with the landing copy.
        ("rows_erased", pa.int64()),
        ("landing_action", pa.string()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("entity", pa.string()),
        ("reason_code", pa.string()),
        ("field", pa.string()),
        ("detail", pa.string()),
        ("raw_text", pa.string()),
    ]
    + PROVENANCE_FIELDS
)


def package():
    """The raw_ingest package. Its limits (MAX_LINE_BYTES, batch sizes) and hooks (line_numbers,
    _append_manifest) are read from it at call time, so a test or tool that sets them on
    `rwe_assets.lib.raw_ingest` is obeyed by every module of the package."""
    return sys.modules[__package__]


class Status:
    INGESTED = "ingested"  # rows written
    DUPLICATE = "duplicate"  # same bytes already ingested for this source: 0 rows added
    # Not data, never read: matches sources.DEFAULT_NON_DATA_FILES (LICENSE, README, log.ndjson, ...)
    # or the source's ignore_files. The batch does not fail for it.
    IGNORED = "ignored"
    FAILED = "failed"  # unreadable; the error names file and line
    # Not read because reading it would leave the landing zone: a symbolic link, or a path that
    # resolves outside its batch. `error` starts with the reason code (SYMLINK_REFUSED,
    # OUTSIDE_LANDING_ZONE). The batch fails, like for a failed file.
    REFUSED = "refused"


@dataclass(frozen=True)
class FileScan:
    """What one streaming pass over a file's bytes tells: its identity and its physical lines."""

    sha256: str
    size_bytes: int
    lines: int
    blank_lines: tuple[int, ...]


@dataclass
class FileResult:
    relative_path: str
    status: str
    file_sha256: str | None = None
    size_bytes: int = 0
    lines_read: int = 0
    records_read: int = 0
    rows_stored: dict[str, int] = field(default_factory=dict)
    rows_quarantined: int = 0
    file_version: int = 1
    supersedes_sha256: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # read with a warning, e.g. undeclared VCF fields

    @property
    def total_stored(self) -> int:
        return sum(self.rows_stored.values())

    @property
    def reconciles(self) -> bool:
        return self.records_read == self.total_stored + self.rows_quarantined


@dataclass
class BatchReport:
    source: str
    batch_id: str
    files: list[FileResult]

    def rows_stored(self, entity: str) -> int:
        return sum(f.rows_stored.get(entity, 0) for f in self.files)

    def files_for(self, entity: str) -> list[FileResult]:
        return [f for f in self.files if entity in f.rows_stored]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status in (Status.FAILED, Status.REFUSED)]


@dataclass(frozen=True)
class Provenance:
    batch_id: str
    source_file: str
    file_sha256: str
    ingested_at: datetime

    def columns(self, line_numbers: np.ndarray) -> list[tuple[str, pa.Array]]:
        n = len(line_numbers)
        return [
            ("_batch_id", pa.repeat(self.batch_id, n).cast(pa.string())),
            ("_source_file", pa.repeat(self.source_file, n).cast(pa.string())),
            ("_file_sha256", pa.repeat(self.file_sha256, n).cast(pa.string())),
            ("_line_number", pa.array(line_numbers, pa.int64())),
            ("_ingested_at", pa.repeat(pa.scalar(self.ingested_at, TIMESTAMP_UTC), n)),
        ]
