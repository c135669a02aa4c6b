"""Raw layer: landed CSV, NDJSON and VCF files into append-only Delta tables, values kept as text.

VCFs (any source entity whose files are *.vcf / *.vcf.gz / *.vcf.bgz / *.bcf) are read with cyvcf2 by
rwe_assets.lib.genomics.vcf_reader: one row per (record, sample, ALT allele) with a non-reference
genotype, and their header lines in <source>/vcf_header (written beside, not a registry entity).

Every stored row carries provenance (batch, file, file sha256, line, ingest time). Rows that cannot
be read go to the raw quarantine table with a reason code; a file that cannot be read at all (empty,
undecodable header, missing columns, truncated gzip) is an InputFileError naming the file and line.
For every file: records read = rows stored + rows quarantined.

Each file is written in its own Delta transaction that replaces any earlier rows of the same file
(see lake.replace_file_rows), and the manifest row is appended last, so a crash leaves either nothing
or rows that the manifest does not yet vouch for; downstream layers only read files the manifest
lists as ingested.

The landing zone is a boundary: a batch id that is not a valid id, a batch that is a link, and a file
that is a symbolic link or resolves outside its batch are refused (status `refused`, the reason code
in `error`), never followed. Every text line is capped at MAX_LINE_BYTES (CSV through DuckDB's
max_line_size, NDJSON by a bounded reader): a longer line is quarantined as LINE_TOO_LONG without
being held in memory. The manifest holds one row per file and outcome: a rerun over a file that
failed, unchanged, adds no row.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import vcf_reader
from rwe_assets.lib.genomics.header import VcfHeader
from rwe_assets.lib.governance import audit, permissions
from rwe_assets.lib.sources import OTHER_RESOURCE, SourceSpec

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
_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
CSV_BATCH_ROWS = 122_880  # a multiple of DuckDB's vector size
NDJSON_BATCH_ROWS = 20_000
# DuckDB reads an empty field as NULL unless told another null string: raw keeps "" as "".
_NO_NULL_STRING = "\x00rwe-no-null\x00"
_READ_CHUNK = 8 << 20
# Longest text line (a CSV row, an NDJSON resource, a header) read as a record. Larger lines are not
# records a site means to send (a FHIR resource carrying a base64 document belongs in a Binary store):
# quarantined as LINE_TOO_LONG, so one such line cannot take gigabytes of memory.
MAX_LINE_BYTES = 16 << 20

# DuckDB's CSV reject error types -> our reason codes.
_CSV_REASONS = {
    "MISSING COLUMNS": "MISSING_COLUMNS",
    "TOO MANY COLUMNS": "TOO_MANY_COLUMNS",
    "INVALID ENCODING": "INVALID_ENCODING",
    "INVALID UNICODE": "INVALID_ENCODING",
    "UNQUOTED VALUE": "UNQUOTED_VALUE",
    "LINE SIZE OVER MAXIMUM": "LINE_TOO_LONG",
}

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
class _Provenance:
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


# --------------------------------------------------------------------------- batch discovery


def batch_files(batch_path: Path) -> list[Path]:
    """The files of a batch in a stable order: a batch is a folder (walked recursively) or one file.

    Hidden files and marker files (names starting with '.' or '_') are not data. Symbolic links are
    listed (never followed: rglob does not descend into linked folders) so the ingest can refuse them
    with a reason.
    """
    if batch_path.is_file() or batch_path.is_symlink():
        return [batch_path]
    files = [
        p
        for p in batch_path.rglob("*")
        if (p.is_symlink() or p.is_file())
        and not any(part.startswith((".", "_")) for part in p.relative_to(batch_path).parts)
    ]
    return sorted(files)


def ingest_batch(
    lake_dir: Path,
    landing_dir: Path,
    source: SourceSpec,
    batch_id: str,
    *,
    run_id: str | None = None,
    now: datetime | None = None,
) -> BatchReport:
    """Ingest every file of landing/<source>/<batch_id> that the manifest has not seen. A batch id
    that is not valid, or a batch that leaves the landing zone, is an InputFileError."""
    from rwe_assets.lib.landing import resolve_batch  # landing lists batches with batch_files

    batch_path = resolve_batch(landing_dir, source.name, batch_id)
    ingested_at = now or datetime.now(UTC)
    manifest = _ManifestView(lake_dir, source.name)
    results = []
    permissions.ensure_private_dir(lake_dir)  # raw rows hold PII: owner-only (governance/permissions)
    with permissions.private_umask():
        for path in batch_files(batch_path):
            relative = path.relative_to(landing_dir).as_posix()
            result = _ingest_one(lake_dir, source, batch_id, path, relative, manifest, ingested_at)
            if result is None:  # already recorded by an earlier run of this batch
                continue
            _append_manifest(lake_dir, source.name, batch_id, result, run_id, ingested_at)
            audit.record_in(
                lake_dir, "ingest", _audit_what(source.name, batch_id, result), result.status, run_id
            )
            manifest.record(batch_id, result)
            results.append(result)
    return BatchReport(source.name, batch_id, results)


def _audit_what(source: str, batch_id: str, result: FileResult) -> dict:
    """The audit trail's view of one file: where it came from and counts, never a value of it."""
    return {
        "source": source,
        "batch_id": batch_id,
        "file": result.relative_path,
        "file_sha256": result.file_sha256,
        "file_version": result.file_version,
        "rows_stored": result.total_stored,
        "rows_quarantined": result.rows_quarantined,
    }


def _ingest_one(lake_dir, source, batch_id, path, relative, manifest, ingested_at) -> FileResult | None:
    refused = _refusal(path, relative)
    if refused is not None:
        return None if manifest.recorded(batch_id, relative, None, refused.error) else refused
    if source.is_ignored(path.name):
        if manifest.recorded(batch_id, relative, None):
            return None
        return FileResult(relative, Status.IGNORED, size_bytes=path.stat().st_size)
    try:
        if not source.accepts(path.name):
            raise InputFileError(
                relative, f"file name matches no entity of source {source.name} ({source.file_patterns()})"
            )
        scan = hash_file(path, relative) if is_vcf(path.name) else scan_file(path, relative)
    except InputFileError as error:
        sha256, size = file_digest(path)  # so a rerun over the same bad bytes adds no manifest row
        if manifest.recorded(batch_id, relative, sha256):
            return None
        return FileResult(relative, Status.FAILED, sha256, size, error=str(error))
    if manifest.recorded(batch_id, relative, scan.sha256):
        return None
    result = FileResult(relative, Status.INGESTED, scan.sha256, scan.size_bytes, scan.lines)
    if manifest.is_ingested(scan.sha256):
        result.status = Status.DUPLICATE
        return result
    result.file_version, result.supersedes_sha256 = manifest.next_version(batch_id, relative)
    provenance = _Provenance(batch_id, relative, scan.sha256, ingested_at)
    try:
        if is_vcf(path.name):
            _ingest_vcf(lake_dir, source, path, provenance, result)
        elif source.format == "csv":
            _ingest_csv(lake_dir, source, path, scan, provenance, result)
        elif is_json_document(path.name):
            _ingest_fhir_json(lake_dir, source, path, provenance, result)
        else:
            _ingest_ndjson(lake_dir, source, path, provenance, result)
    except InputFileError as error:
        result.status, result.error = Status.FAILED, str(error)
        result.rows_stored, result.records_read, result.rows_quarantined = {}, 0, 0
    return result


def _refusal(path: Path, relative: str) -> FileResult | None:
    """A FileResult refusing a file whose reading would leave the landing zone, or None. The batch
    folder is found from the relative path: landing/<source>/<batch>/..."""
    batch_root = path.parents[len(Path(relative).parts) - 3] if len(Path(relative).parts) > 2 else path
    if path.is_symlink():
        code, why = "SYMLINK_REFUSED", "a symbolic link: the landing zone reads no links (copy the file in)"
    elif not path.resolve().is_relative_to(batch_root.resolve()):
        code, why = "OUTSIDE_LANDING_ZONE", "resolves to a path outside its batch folder"
    else:
        return None
    return FileResult(relative, Status.REFUSED, error=f"{relative}: {code}: {why}; not read")


# --------------------------------------------------------------------------- file scan


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file's bytes (an empty file included)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(_READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def open_decompressed(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


# A newline followed by an empty line: the match ends the line before a blank one. (A pattern anchored
# with ^ would be tried at every byte; this one only at newlines, ten times faster.)
_BEFORE_BLANK_LINE = re.compile(rb"\n(?=\r?\n)")


class _LineCounter:
    """Counts physical lines and finds blank ones in a stream fed in chunks of any size."""

    def __init__(self):
        self.lines, self.blank, self._carry = 0, [], b""

    def feed(self, chunk: bytes) -> None:
        data = self._carry + chunk
        cut = data.rfind(b"\n") + 1
        complete, self._carry = data[:cut], data[cut:]
        if complete.startswith((b"\n", b"\r\n")):
            self.blank.append(self.lines + 1)
        seen, position = 0, 0
        for match in _BEFORE_BLANK_LINE.finditer(complete):
            seen += complete.count(b"\n", position, match.start())
            position = match.start()
            self.blank.append(self.lines + seen + 2)
        self.lines += complete.count(b"\n")

    def finish(self) -> tuple[int, tuple[int, ...]]:
        last_line = 1 if self._carry else 0  # a last line without a trailing newline
        blank_last = 1 if self._carry and not self._carry.strip(b"\r") else 0
        return self.lines + last_line, tuple(self.blank + ([self.lines + 1] if blank_last else []))


def scan_file(path: Path, relative: str) -> FileScan:
    """sha256 and size of the bytes on disk; physical line count and blank lines of the content.

    One streaming pass in bounded memory (two for gzip: the archive's bytes are hashed, its content is
    counted, so a truncated archive fails here, before anything is written).
    """
    digest, size, counter = hashlib.sha256(), 0, _LineCounter()
    compressed = path.name.lower().endswith(".gz")
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(_READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if not compressed:
                counter.feed(chunk)
    if size == 0:
        raise InputFileError(relative, "empty file: expected at least a header line", line=1)
    if compressed:
        _count_gzip_lines(path, relative, counter)
    lines, blank = counter.finish()
    if lines == len(blank):
        raise InputFileError(relative, "empty file: expected at least a header line", line=1)
    return FileScan(digest.hexdigest(), size, lines, blank)


def _count_gzip_lines(path: Path, relative: str, counter: _LineCounter) -> None:
    try:
        with gzip.open(path, "rb") as content:
            for chunk in iter(lambda: content.read(_READ_CHUNK), b""):
                counter.feed(chunk)
    except (EOFError, OSError, zlib.error) as error:
        where = f"after line {counter.lines}" if counter.lines else "before the end of its first line"
        raise InputFileError(
            relative,
            f"truncated or corrupt gzip: the archive ends {where} ({type(error).__name__})",
            line=counter.lines + 1,
        ) from None


def hash_file(path: Path, relative: str) -> FileScan:
    """sha256 and size only: a VCF's lines are counted while cyvcf2 reads it, and its truncation is
    detected there (decompressing it twice would cost more than parsing it)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(_READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    if size == 0:
        raise InputFileError(relative, "empty file: expected a VCF header", line=1)
    return FileScan(digest.hexdigest(), size, 0, ())


# --------------------------------------------------------------------------- CSV


def read_header(path: Path, relative: str, encoding: str) -> list[str]:
    with open_decompressed(path) as content:
        first = content.readline(MAX_LINE_BYTES + 1)
    if len(first) > MAX_LINE_BYTES:
        raise InputFileError(
            relative, f"LINE_TOO_LONG: header line longer than {MAX_LINE_BYTES >> 20} MiB", line=1
        )
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputFileError(
            relative,
            f"header is not valid {encoding} (byte {error.start}); set the source's encoding",
            line=1,
        ) from None
    text = text.lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise InputFileError(relative, "expected a header line, found an empty line", line=1)
    return next(csv.reader([text]))


def check_header(header: list[str], required: tuple[str, ...], relative: str) -> None:
    """A header must name every required column once; names are compared case-insensitively
    because Delta column names are."""
    lowered = [name.lower() for name in header]
    empty = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if empty:
        raise InputFileError(relative, f"header has unnamed columns at positions {empty}", line=1)
    repeated = sorted({name for name in header if lowered.count(name.lower()) > 1})
    if repeated:
        raise InputFileError(relative, f"header names columns more than once: {', '.join(repeated)}", line=1)
    reserved = sorted(set(lowered) & {c.lower() for c in PROVENANCE_COLUMNS})
    if reserved:
        raise InputFileError(
            relative, f"header uses reserved provenance column names: {', '.join(reserved)}", line=1
        )
    missing = [name for name in required if name.lower() not in lowered]
    if missing:
        raise InputFileError(
            relative,
            f"header does not match the source's schema: expected columns {', '.join(missing)}, "
            f"found {len(header)} columns without them",
            line=1,
        )


def line_numbers(good_before: int, count: int, skipped_lines: np.ndarray) -> np.ndarray:
    """Physical line numbers of the next `count` good records, `good_before` good records having
    come before them. Data starts on line 2 (line 1 is the header).

    `skipped_lines` (sorted) are lines that hold no good record: rejected rows and blank lines. The
    k-th good record (0-based) sits on the smallest line L with L - 2 - #(skipped lines < L) = k,
    found for a whole batch at once with searchsorted.
    """
    base = np.arange(good_before, good_before + count, dtype=np.int64) + 2
    if len(skipped_lines) == 0:
        return base
    thresholds = skipped_lines - np.arange(len(skipped_lines), dtype=np.int64)
    return base + np.searchsorted(thresholds, base, side="right")


@dataclass
class _CsvPass:
    needs_renumber: bool = False
    read_error: duckdb.Error | None = None
    rows: int = 0


def _ingest_csv(lake_dir, source, path, scan, provenance, result) -> None:
    entity = source.entity_for_file(path.name)
    if entity is None:
        expected = "; ".join(f"{e.name}: {' '.join(e.files)}" for e in source.entities)
        raise InputFileError(
            result.relative_path, f"file name matches no entity of source {source.name} ({expected})"
        )
    header = read_header(path, result.relative_path, source.encoding)
    check_header(header, entity.required_columns, result.relative_path)
    target = lake.table_path(lake_dir, "raw", source.name, entity.name)
    skipped = np.array(scan.blank_lines, dtype=np.int64)
    rejects = None
    for _attempt in range(2):
        con = _csv_connection()
        state = _CsvPass()
        batches = _csv_batches(con, path, header, source.encoding, provenance, skipped, state)
        try:
            lake.replace_file_rows(target, batches, provenance.file_sha256)
        except Exception:
            if state.read_error is not None:
                raise _csv_error(state.read_error, result.relative_path) from None
            if not state.needs_renumber:
                raise
        rejects = _csv_rejects(con)
        con.close()
        if not state.needs_renumber:
            break
        # Rows were rejected: line numbers must skip them. Redo the file knowing where they are.
        skipped = np.union1d(skipped, np.array(sorted({r[0] for r in rejects}), dtype=np.int64))
    result.rows_stored = {entity.name: state.rows}
    quarantined = _csv_quarantine_rows(source.name, entity.name, rejects, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.rows_quarantined = quarantined.num_rows
    result.records_read = state.rows + quarantined.num_rows


def _csv_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")  # line numbers rely on file order
    return con


def _csv_batches(con, path, header, encoding, provenance, skipped, state) -> pa.RecordBatchReader:
    params = {
        "path": str(path),
        "columns": {name: "VARCHAR" for name in header},
        "encoding": encoding,
        "nullstr": _NO_NULL_STRING,
        "max_line": MAX_LINE_BYTES,
    }
    reader = con.execute(
        """
        SELECT * FROM read_csv($path, header = true, auto_detect = false, columns = $columns,
            delim = ',', quote = '"', escape = '"', nullstr = $nullstr, allow_quoted_nulls = false,
            strict_mode = true, store_rejects = true, encoding = $encoding, compression = 'auto',
            max_line_size = $max_line)
        """,
        params,
    ).fetch_record_batch(CSV_BATCH_ROWS)
    schema = pa.schema(list(reader.schema) + PROVENANCE_FIELDS)

    def batches() -> Iterator[pa.RecordBatch]:
        while (batch := _next_batch(reader, state)) is not None:
            numbers = line_numbers(state.rows, batch.num_rows, skipped)
            state.rows += batch.num_rows
            columns = list(zip(batch.schema.names, batch.columns, strict=True)) + provenance.columns(numbers)
            yield pa.RecordBatch.from_arrays([c for _, c in columns], schema=schema)
        rejected = con.execute("SELECT count(*) FROM reject_errors").fetchone()[0]
        if rejected and not set(_reject_lines(con)) <= set(skipped.tolist()):
            state.needs_renumber = True
            raise RuntimeError("rows were rejected; renumbering lines")

    return pa.RecordBatchReader.from_batches(schema, batches())


def _next_batch(reader: pa.RecordBatchReader, state: _CsvPass) -> pa.RecordBatch | None:
    """The next batch from DuckDB; a read error is kept so it can be told apart from write errors
    (Delta wraps whatever the stream raises)."""
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (duckdb.Error, pa.ArrowInvalid) as error:
        state.read_error = error
        raise


def _reject_lines(con) -> list[int]:
    return [row[0] for row in con.execute("SELECT DISTINCT line FROM reject_errors").fetchall()]


def _csv_rejects(con) -> list[tuple]:
    """One row per rejected line: (line, column name, error type, original line text). An error of the
    whole line (LINE SIZE OVER MAXIMUM) has no column index: it sorts first."""
    return con.execute(
        """
        SELECT line, arg_min(column_name, coalesce(column_idx, -1)),
            arg_min(error_type, coalesce(column_idx, -1)), any_value(csv_line)
        FROM reject_errors GROUP BY line ORDER BY line
        """
    ).fetchall()


def _csv_quarantine_rows(source, entity, rejects, provenance) -> pa.Table:
    rows = []
    for line, column, error_type, text in rejects:
        reason = _CSV_REASONS.get(str(error_type), str(error_type).replace(" ", "_"))
        rows.append((line, reason, column, f"{str(error_type).lower()} at line {line}", text))
    return _quarantine_table(source, entity, rows, provenance)


def _csv_error(error: Exception, relative: str) -> InputFileError:
    message = str(error)
    line = re.search(r"CSV Error on Line: (\d+)", message)
    first = message.splitlines()[0] if message else type(error).__name__
    # DuckDB quotes the offending line in its message: keep only the first line, which does not.
    first = re.sub(r"Original Line:.*", "", first)
    return InputFileError(relative, f"unreadable CSV: {first}", line=int(line.group(1)) if line else None)


# --------------------------------------------------------------------------- NDJSON


@dataclass
class _NdjsonLine:
    number: int
    text: str | None
    entity: str | None
    resource_type: str | None
    resource_id: str | None
    reason: str | None = None
    detail: str | None = None


def _parse_ndjson_line(number: int, raw: bytes | int, known: set[str]) -> _NdjsonLine:
    if isinstance(raw, int):  # _bounded_lines: the length of a line over the cap, not kept
        detail = f"line of {raw} bytes, longer than the cap of {MAX_LINE_BYTES >> 20} MiB"
        return _NdjsonLine(number, None, None, None, None, "LINE_TOO_LONG", detail)
    raw = raw.rstrip(b"\r\n")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return _NdjsonLine(
            number,
            raw.decode("utf-8", "replace"),
            None,
            None,
            None,
            "INVALID_ENCODING",
            f"not UTF-8 at byte {error.start}",
        )
    if not text.strip():
        return _NdjsonLine(number, text, None, None, None, "EMPTY_LINE", "blank line")
    try:
        resource = json.loads(text)
    except json.JSONDecodeError as error:
        return _NdjsonLine(
            number, text, None, None, None, "MALFORMED_JSON", f"{error.msg} at column {error.colno}"
        )
    if not isinstance(resource, dict):
        return _NdjsonLine(number, text, None, None, None, "NOT_A_JSON_OBJECT", "expected a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return _NdjsonLine(number, text, None, None, None, "MISSING_RESOURCE_TYPE", "no resourceType")
    if resource_type == "Bundle" and resource.get("type") in BUNDLE_TYPES:
        detail = (
            f"a FHIR Bundle (type {resource['type']}) on line {number}: land a Bundle as .json, one per file"
        )
        return _NdjsonLine(number, text, None, None, None, "BUNDLE_IN_NDJSON", detail)
    entity = resource_type.lower() if resource_type.lower() in known else OTHER_RESOURCE
    resource_id = resource.get("id")
    return _NdjsonLine(number, text, entity, resource_type, None if resource_id is None else str(resource_id))


def _check_ndjson_start(path: Path, relative: str) -> None:
    """An .ndjson file must start with a JSON object on one line. A first line that opens a multi-line
    document (`{` or `[` alone: a pretty-printed Bundle or resource) or holds a whole FHIR Bundle is a
    JSON document under the wrong name: the file is refused, never read line by line."""
    try:
        with open_decompressed(path) as content:
            for number, raw in enumerate(_bounded_lines(content), start=1):
                if isinstance(raw, int):
                    return  # too long to be a document's first line: quarantined by the read
                text = raw.strip()
                if not text:
                    continue
                if text in (b"{", b"["):
                    raise InputFileError(
                        relative,
                        f"expected one JSON object per line, found the start of a multi-line JSON document "
                        f"on line {number} (a pretty-printed Bundle or resource?): land it as .json",
                        line=number,
                    )
                line = _parse_ndjson_line(number, raw, set())
                if line.reason == "BUNDLE_IN_NDJSON":
                    raise InputFileError(
                        relative, f"expected FHIR resources, one per line, found {line.detail}", line=number
                    )
                return
    except (EOFError, OSError, zlib.error) as error:
        raise InputFileError(relative, f"unreadable or truncated file ({type(error).__name__})") from None


def _bounded_lines(stream, cap: int | None = None) -> Iterator[bytes | int]:
    """The lines of a binary stream; a line longer than `cap` bytes (default MAX_LINE_BYTES; its
    newline aside) yields its length instead, read through in chunks and never held whole."""
    cap = MAX_LINE_BYTES if cap is None else cap
    while line := stream.readline(cap + 1):
        if len(line) <= cap or line.endswith(b"\n"):
            yield line
            continue
        length = len(line)
        while (more := stream.readline(_READ_CHUNK)) and not more.endswith(b"\n"):
            length += len(more)
        length += len(more.rstrip(b"\r\n")) if more else 0
        yield length


def _ndjson_lines(path: Path, relative: str, known: set[str]) -> Iterator[_NdjsonLine]:
    try:
        with open_decompressed(path) as content:
            for number, raw in enumerate(_bounded_lines(content), start=1):
                yield _parse_ndjson_line(number, raw, known)
    except (EOFError, OSError, zlib.error) as error:
        raise InputFileError(relative, f"unreadable or truncated file ({type(error).__name__})") from None


_NDJSON_SCHEMA = [
    ("resource_type", pa.string()),
    ("resource_id", pa.string()),
    ("resource_json", pa.string()),
]
# The raw table of every FHIR entity, whether its rows came from NDJSON lines or Bundle entries.
_NDJSON_RAW_SCHEMA = pa.schema([pa.field(n, t) for n, t in _NDJSON_SCHEMA] + PROVENANCE_FIELDS)


class _NdjsonPass:
    """One read of an NDJSON file that streams the lines of one entity. The first pass takes the
    entity of the first valid line and also counts records and collects quarantined lines."""

    def __init__(self, path: Path, relative: str, known: set[str], entity: str | None):
        self.path, self.relative, self.known = path, relative, known
        self.entity, self.first_pass = entity, entity is None
        self.rows, self.records = 0, 0
        self.seen: set[str] = set()
        self.quarantine: list[tuple] = []

    def batches(self, provenance: _Provenance) -> Iterator[pa.RecordBatch]:
        buffer: list[_NdjsonLine] = []
        for line in _ndjson_lines(self.path, self.relative, self.known):
            if self.first_pass:
                self.records += 1
                if line.reason:
                    self.quarantine.append((line.number, line.reason, None, line.detail, line.text))
            if line.entity is None:
                continue
            self.seen.add(line.entity)
            self.entity = self.entity or line.entity
            if line.entity == self.entity:
                buffer.append(line)
                if len(buffer) >= NDJSON_BATCH_ROWS:
                    yield self._emit(buffer, provenance)
                    buffer = []
        if buffer:
            yield self._emit(buffer, provenance)

    def _emit(self, buffer: list[_NdjsonLine], provenance: _Provenance) -> pa.RecordBatch:
        self.rows += len(buffer)
        return _ndjson_batch(buffer, provenance)


def _ingest_ndjson(lake_dir, source, path, provenance, result) -> None:
    """One pass per resource type in the file (bulk exports hold one type per file, so usually one
    pass), each an atomic replace of this file's rows in that entity's table."""
    _check_ndjson_start(path, result.relative_path)
    known = set(source.entity_names)
    first, pending = None, [None]
    while pending:
        current = _NdjsonPass(path, result.relative_path, known, pending.pop(0))
        stream = current.batches(provenance)
        head = next(stream, None)  # reading one batch tells the entity of this pass
        if head is not None:
            target = lake.table_path(lake_dir, "raw", source.name, current.entity)
            reader = pa.RecordBatchReader.from_batches(_NDJSON_RAW_SCHEMA, _chain(head, stream))
            lake.replace_file_rows(target, reader, provenance.file_sha256)
            result.rows_stored[current.entity] = current.rows
        if first is None:
            first = current
            pending = sorted(current.seen - {current.entity})
    result.records_read = first.records
    quarantined = _quarantine_table(source.name, None, first.quarantine, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.rows_quarantined = quarantined.num_rows


def _chain(first, rest):
    yield first
    yield from rest


def _ndjson_batch(lines: list[_NdjsonLine], provenance: _Provenance) -> pa.RecordBatch:
    numbers = np.fromiter((line.number for line in lines), dtype=np.int64, count=len(lines))
    arrays = [
        pa.array([line.resource_type for line in lines], pa.string()),
        pa.array([line.resource_id for line in lines], pa.string()),
        pa.array([line.text for line in lines], pa.string()),
    ] + [array for _, array in provenance.columns(numbers)]
    names = [name for name, _ in _NDJSON_SCHEMA] + list(PROVENANCE_COLUMNS)
    return pa.RecordBatch.from_arrays(arrays, names=names)


# --------------------------------------------------------------------------- FHIR JSON documents
#
# A *.json / *.json.gz file of an NDJSON (FHIR) source holds one JSON document: a FHIR Bundle of a type
# in BUNDLE_TYPES (Synthea's default output: one transaction Bundle per patient), or one resource. Each
# Bundle entry's resource becomes one raw row exactly like an NDJSON line (same columns; the entity is
# the lower-cased resourceType); _line_number holds the entry index + 1 (a single resource: 1). The
# resource is re-serialized compactly with numbers kept as written (1.50 stays 1.50). Anything else is
# refused with the file and line, before a row is written.

BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")
_JSON_SUFFIXES = (".json", ".json.gz")
# The document is parsed whole with the json module (ijson is not a dependency): a Synthea patient
# Bundle is a few MB. Larger documents are refused; send them as bulk NDJSON.
MAX_JSON_DOCUMENT_BYTES = 512 << 20


def is_json_document(file_name: str) -> bool:
    return file_name.lower().endswith(_JSON_SUFFIXES)


class _JsonNumber:
    """A JSON number kept as its text, so re-serializing a resource does not change it."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_text(value) -> str:
    """Compact JSON of a document parsed by _read_json_document (key order and numbers as read)."""
    parts: list[str] = []
    _encode_json(value, parts.append)
    return "".join(parts)


def _encode_json(value, out) -> None:
    if isinstance(value, str):
        out(_encode_string(value))
    elif isinstance(value, dict):
        out("{")
        for k, (key, item) in enumerate(value.items()):
            out(("," if k else "") + _encode_string(key) + ":")
            _encode_json(item, out)
        out("}")
    elif isinstance(value, list):
        out("[")
        for k, item in enumerate(value):
            if k:
                out(",")
            _encode_json(item, out)
        out("]")
    elif isinstance(value, _JsonNumber):
        out(value.text)
    elif value is None or isinstance(value, bool):
        out({None: "null", True: "true", False: "false"}[value])
    else:  # int
        out(str(value))


def _scalar_text(value) -> str:
    return value.text if isinstance(value, _JsonNumber) else str(value)


def _encode_string(text: str) -> str:
    return json.encoder.encode_basestring(text)  # no \u escapes: UTF-8 text stays as written


def _read_json_document(path: Path, relative: str):
    try:
        with open_decompressed(path) as content:
            data = content.read(MAX_JSON_DOCUMENT_BYTES + 1)
    except (EOFError, OSError, zlib.error) as error:
        raise InputFileError(relative, f"unreadable or truncated file ({type(error).__name__})") from None
    if len(data) > MAX_JSON_DOCUMENT_BYTES:
        raise InputFileError(
            relative,
            f"JSON document larger than {MAX_JSON_DOCUMENT_BYTES >> 20} MiB: send it as bulk NDJSON",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputFileError(relative, f"not valid UTF-8 (byte {error.start})", line=line) from None
    try:
        return json.loads(text, parse_float=_JsonNumber, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            message = (
                f"expected one JSON document (a FHIR Bundle or one resource), found another starting on "
                f"line {error.lineno} (NDJSON? name it .ndjson)"
            )
        else:
            message = f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        raise InputFileError(relative, message, line=error.lineno) from None
    except ValueError as error:
        raise InputFileError(relative, f"not valid JSON: {error}") from None


def _json_document_entries(document, relative: str) -> list:
    """A Bundle's entries, or the single resource as one entry."""
    if not isinstance(document, dict):
        found = type(document).__name__.replace("list", "array").replace("_JsonNumber", "number")
        raise InputFileError(
            relative, f"expected a JSON object (a FHIR Bundle or one resource), found a JSON {found}", line=1
        )
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InputFileError(relative, "expected a FHIR Bundle or resource, found no resourceType", line=1)
    if resource_type != "Bundle":
        return [{"resource": document}]
    bundle_type = document.get("type")
    if bundle_type not in BUNDLE_TYPES:
        found = bundle_type if isinstance(bundle_type, str) else "no type"
        raise InputFileError(
            relative, f"expected a Bundle of type {', '.join(BUNDLE_TYPES)}, found {found}", line=1
        )
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise InputFileError(relative, "expected Bundle.entry to be an array", line=1)
    return entries


def _bundle_entry(number: int, item, known: set[str]) -> _NdjsonLine:
    """One Bundle entry (number = index + 1) as a raw row, or the reason it is quarantined."""
    where = f"entry {number - 1}"
    if not isinstance(item, dict):
        return _NdjsonLine(
            number,
            _json_text(item),
            None,
            None,
            None,
            "NOT_A_JSON_OBJECT",
            f"{where}: expected a JSON object",
        )
    request = item.get("request")
    method = request.get("method") if isinstance(request, dict) else None
    if isinstance(method, str) and method.upper() == "DELETE":
        detail = f"{where}: request.method DELETE is a deletion, not a resource; not applied"
        return _NdjsonLine(number, _json_text(item), None, None, None, "BUNDLE_DELETE_NOT_SUPPORTED", detail)
    resource = item.get("resource")
    if not isinstance(resource, dict):
        detail = f"{where}: no resource"
        return _NdjsonLine(
            number, _json_text(item), None, None, None, "BUNDLE_ENTRY_WITHOUT_RESOURCE", detail
        )
    text = _json_text(resource)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return _NdjsonLine(
            number, text, None, None, None, "MISSING_RESOURCE_TYPE", f"{where}: no resourceType"
        )
    resource_id = resource.get("id")
    full_url = item.get("fullUrl")
    if resource_id is None and isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        resource_id = full_url[len("urn:uuid:") :]  # a transaction entry to be created under this id
    entity = resource_type.lower() if resource_type.lower() in known else OTHER_RESOURCE
    return _NdjsonLine(
        number,
        text,
        entity,
        resource_type,
        None if resource_id is None else _scalar_text(resource_id),
    )


def _ingest_fhir_json(lake_dir, source, path, provenance, result) -> None:
    """One FHIR Bundle (or one resource) per file: its entries to their entities' tables (one atomic
    replace of this file's rows per entity), the entries that are not resources to the quarantine."""
    relative = result.relative_path
    entries = _json_document_entries(_read_json_document(path, relative), relative)
    known = set(source.entity_names)
    lines = [_bundle_entry(index + 1, item, known) for index, item in enumerate(entries)]
    by_entity: dict[str, list[_NdjsonLine]] = {}
    for line in lines:
        if line.entity is not None:
            by_entity.setdefault(line.entity, []).append(line)
    for entity, rows in sorted(by_entity.items()):
        table = pa.Table.from_batches([_ndjson_batch(rows, provenance)], schema=_NDJSON_RAW_SCHEMA)
        lake.replace_file_rows(
            lake.table_path(lake_dir, "raw", source.name, entity), table, provenance.file_sha256
        )
        result.rows_stored[entity] = len(rows)
    bad = [(line.number, line.reason, None, line.detail, line.text) for line in lines if line.reason]
    quarantined = _quarantine_table(source.name, None, bad, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.records_read, result.rows_quarantined = len(lines), quarantined.num_rows
    deletes = sum(line.reason == "BUNDLE_DELETE_NOT_SUPPORTED" for line in lines)
    if deletes:
        result.warnings.append(
            f"{deletes} Bundle entr{'ies' if deletes > 1 else 'y'} with request.method DELETE quarantined "
            f"(BUNDLE_DELETE_NOT_SUPPORTED): deletions are not applied"
        )


# --------------------------------------------------------------------------- VCF


def is_vcf(file_name: str) -> bool:
    return file_name.lower().endswith(_VCF_SUFFIXES)


def _ingest_vcf(lake_dir, source, path, provenance, result) -> None:
    """Calls into <source>/<entity> in one Delta transaction; GT alleles above the record's ALT count
    into the raw quarantine (ALLELE_INDEX_OUT_OF_RANGE); then the header lines and the file's counts
    into <source>/vcf_header. A read error fails the file and writes nothing; any other failure fails
    the file too, naming the last line read."""
    entity = source.entity_for_file(path.name)
    vcf, header = vcf_reader.open_vcf(path, result.relative_path)
    counts = vcf_reader.VcfCounts()
    try:
        _write_vcf(lake_dir, source, entity, path, vcf, header, counts, provenance, result)
    except InputFileError:
        raise
    except Exception as error:
        raise InputFileError(
            result.relative_path,
            f"could not ingest the file ({type(error).__name__})",
            line=header.line_count + counts.records,
        ) from None


def _write_vcf(lake_dir, source, entity, path, vcf, header, counts, provenance, result) -> None:
    failure: list[InputFileError] = []
    stream = vcf_reader.call_batches(path, result.relative_path, vcf, header, counts, provenance.columns)
    schema = pa.schema(vcf_reader.STREAM_FIELDS + PROVENANCE_FIELDS)
    target = lake.table_path(lake_dir, "raw", source.name, entity.name)
    try:
        lake.replace_file_rows(
            target,
            pa.RecordBatchReader.from_batches(schema, _keep_error(stream, failure)),
            provenance.file_sha256,
        )
    except Exception:
        if failure:  # Delta wraps what the stream raised: re-raise the reader's own error
            raise failure[0] from None
        raise
    finally:
        vcf.close()
    quarantined = _out_of_range_rows(source.name, entity.name, header, counts, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    header_rows = vcf_header_table(header, counts, provenance)
    lake.replace_file_rows(
        lake.table_path(lake_dir, "raw", source.name, VCF_HEADER), header_rows, provenance.file_sha256
    )
    result.rows_stored = {entity.name: counts.calls}
    result.rows_quarantined = quarantined.num_rows
    result.records_read = counts.calls + quarantined.num_rows
    result.lines_read = header.line_count + counts.records
    result.warnings = counts.warnings()


def _out_of_range_rows(source, entity, header: VcfHeader, counts, provenance) -> pa.Table:
    """One quarantine row per (record, sample, allele k) whose k is above the record's ALT count;
    raw_text is the GT as written."""
    rows = [
        (
            header.line_count + o.record_number,
            vcf_reader.ALLELE_INDEX_OUT_OF_RANGE,
            "GT",
            f"sample column {o.sample_index + 1} ({header.samples[o.sample_index]}): GT allele {o.allele}, "
            f"the record has {o.alt_count} ALT allele{'s' if o.alt_count != 1 else ''}",
            o.genotype,
        )
        for o in counts.out_of_range
    ]
    return _quarantine_table(source, entity, rows, provenance)


def _keep_error(stream, failure: list):
    try:
        yield from stream
    except InputFileError as error:
        failure.append(error)
        raise


VCF_HEADER_SCHEMA = pa.schema(
    [
        ("section", pa.string()),  # fileformat, reference, contig, INFO, FORMAT, FILTER, ..., sample, count
        ("item_id", pa.string()),  # ID=, the sample name, or the count's name
        ("number", pa.string()),  # Number= (a sample's 0-based column; a count's value)
        ("type", pa.string()),
        ("description", pa.string()),
        ("length", pa.int64()),
        ("assembly", pa.string()),
        ("text", pa.string()),  # the header line as read
        ("genome_build", pa.string()),  # the build the header tells (reference, assemblies, chr1 length)
    ]
    + PROVENANCE_FIELDS
)


def vcf_header_table(header: VcfHeader, counts: vcf_reader.VcfCounts, provenance: _Provenance) -> pa.Table:
    """One row per header line, per sample (line of #CHROM) and per genotype count (line 0 = the file)."""
    rows = [
        (i.line, i.section, i.item_id, i.number, i.item_type, i.description, i.length, i.assembly, i.text)
        for i in header.items
    ]
    rows += [
        (header.line_count, "sample", name, str(k), None, None, None, None, None)
        for k, name in enumerate(header.samples)
    ]
    rows += [
        (0, "count", name, str(value), None, None, None, None, None)
        for name, value in counts.as_dict().items()
    ]
    names = VCF_HEADER_SCHEMA.names[:8]
    arrays = {
        name: pa.array([r[k + 1] for r in rows], VCF_HEADER_SCHEMA.field(name).type)
        for k, name in enumerate(names)
    }
    arrays["genome_build"] = pa.repeat(pa.scalar(header.build, pa.string()), len(rows))
    lines = np.array([r[0] for r in rows], dtype=np.int64)
    arrays.update(dict(provenance.columns(lines)))
    return pa.table(arrays, schema=VCF_HEADER_SCHEMA)


# --------------------------------------------------------------------------- quarantine + manifest


def _quarantine_table(
    source: str, entity: str | None, rows: list[tuple], provenance: _Provenance
) -> pa.Table:
    """rows: (line, reason_code, field, detail, raw_text). Details never quote the value."""
    numbers = np.array([row[0] for row in rows], dtype=np.int64)
    arrays = {
        "source": pa.repeat(source, len(rows)).cast(pa.string()),
        "entity": pa.array([entity] * len(rows), pa.string()),
        "reason_code": pa.array([row[1] for row in rows], pa.string()),
        "field": pa.array([row[2] for row in rows], pa.string()),
        "detail": pa.array([row[3] for row in rows], pa.string()),
        "raw_text": pa.array([row[4] for row in rows], pa.string()),
    }
    arrays.update(dict(provenance.columns(numbers)))
    return pa.table(arrays, schema=QUARANTINE_SCHEMA)


def _write_quarantine(lake_dir: Path, table: pa.Table, file_sha256: str) -> None:
    path = lake.table_path(lake_dir, "raw", QUARANTINE)
    if table.num_rows or lake.exists(path):
        lake.replace_file_rows(path, table, file_sha256)


def _append_manifest(lake_dir, source, batch_id, result: FileResult, run_id, ingested_at) -> None:
    row = {
        "source": source,
        "batch_id": batch_id,
        "relative_path": result.relative_path,
        "file_sha256": result.file_sha256,
        "size_bytes": result.size_bytes,
        "lines_read": result.lines_read,
        "records_read": result.records_read,
        "rows_stored": result.total_stored,
        "rows_quarantined": result.rows_quarantined,
        "entities": ",".join(sorted(result.rows_stored)),
        "status": result.status,
        "file_version": result.file_version,
        "supersedes_sha256": result.supersedes_sha256,
        "error": result.error,
        "run_id": run_id,
        "ingested_at": ingested_at,
    }
    lake.append(
        lake.table_path(lake_dir, "raw", MANIFEST), pa.Table.from_pylist([row], schema=MANIFEST_SCHEMA)
    )


def read_manifest(lake_dir: Path, source: str | None = None) -> pa.Table:
    """The ingest manifest (one row per landed file per batch), optionally for one source."""
    table = lake.read_table(
        lake.table_path(lake_dir, "raw", MANIFEST),
        filter_expr=None if source is None else ds.field("source") == source,
    )
    if table is None:
        return MANIFEST_SCHEMA.empty_table()
    return table.sort_by(
        [("ingested_at", "ascending"), ("source", "ascending"), ("relative_path", "ascending")]
    )


class _ManifestView:
    """What the manifest already knows about one source, kept current as files are ingested."""

    def __init__(self, lake_dir: Path, source: str):
        rows = read_manifest(lake_dir, source).to_pylist()
        self._recorded = {(r["batch_id"], r["relative_path"], r["file_sha256"]) for r in rows}
        self._refused = {
            (r["batch_id"], r["relative_path"], r["error"]) for r in rows if r["status"] == Status.REFUSED
        }
        self._ingested = {r["file_sha256"] for r in rows if r["status"] == Status.INGESTED}
        self._versions: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for r in rows:
            if r["status"] == Status.INGESTED:
                self._versions.setdefault((r["batch_id"], r["relative_path"]), []).append(
                    (r["file_version"], r["file_sha256"])
                )

    def recorded(self, batch_id: str, relative: str, sha256: str | None, refusal: str | None = None) -> bool:
        if refusal is not None:  # a refused file has no sha256: the same refusal is the same outcome
            return (batch_id, relative, refusal) in self._refused
        return (batch_id, relative, sha256) in self._recorded

    def is_ingested(self, sha256: str) -> bool:
        return sha256 in self._ingested

    def next_version(self, batch_id: str, relative: str) -> tuple[int, str | None]:
        versions = sorted(self._versions.get((batch_id, relative), []))
        return (versions[-1][0] + 1, versions[-1][1]) if versions else (1, None)

    def record(self, batch_id: str, result: FileResult) -> None:
        if result.status == Status.REFUSED:
            self._refused.add((batch_id, result.relative_path, result.error))
            return
        self._recorded.add((batch_id, result.relative_path, result.file_sha256))
        if result.status == Status.INGESTED:
            self._ingested.add(result.file_sha256)
            self._versions.setdefault((batch_id, result.relative_path), []).append(
                (result.file_version, result.file_sha256)
            )


# --------------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class FileReconciliation:
    relative_path: str
    file_sha256: str
    entities: tuple[str, ...]
    records_read: int  # as the manifest recorded it while reading the file
    rows_stored: int  # counted again in the raw tables now
    rows_quarantined: int  # counted again in the quarantine table now

    @property
    def unaccounted(self) -> int:
        return self.records_read - self.rows_stored - self.rows_quarantined


def reconcile_files(
    lake_dir: Path, source: SourceSpec, batch_id: str | None = None
) -> list[FileReconciliation]:
    """For every file the manifest lists as ingested (optionally one batch), recount its rows in the
    raw tables and the quarantine and compare with the records read from the file."""
    manifest = read_manifest(lake_dir, source.name)
    rows = [
        r
        for r in manifest.to_pylist()
        if r["status"] == Status.INGESTED and (batch_id is None or r["batch_id"] == batch_id)
    ]
    if not rows:
        return []
    shas = pa.array(sorted({r["file_sha256"] for r in rows}), pa.string())
    stored = _count_by_file(
        [lake.table_path(lake_dir, "raw", source.name, e) for e in source.entity_names], shas
    )
    quarantine_filter = ds.field("source") == source.name
    quarantined = _count_by_file([lake.table_path(lake_dir, "raw", QUARANTINE)], shas, quarantine_filter)
    return [
        FileReconciliation(
            r["relative_path"],
            r["file_sha256"],
            tuple(e for e in (r["entities"] or "").split(",") if e),
            r["records_read"],
            stored.get(r["file_sha256"], 0),
            quarantined.get(r["file_sha256"], 0),
        )
        for r in rows
    ]


def _count_by_file(paths, shas, extra_filter=None) -> dict[str, int]:
    counts: dict[str, int] = {}
    condition = ds.field("_file_sha256").isin(shas)
    if extra_filter is not None:
        condition = condition & extra_filter
    for path in paths:
        table = lake.read_table(path, columns=["_file_sha256"], filter_expr=condition)
        if table is None or table.num_rows == 0:
            continue
        for item in pc.value_counts(table.column("_file_sha256")).to_pylist():
            counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts
