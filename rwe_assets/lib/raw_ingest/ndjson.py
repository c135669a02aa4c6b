"""FHIR bulk NDJSON: one resource per line into the raw table of its resource type.

The file is read in blocks of whole lines, each into one array (its newlines found once). A block is
cut into lines with numpy (one Arrow string per line, its newline and one \\r before it removed);
DuckDB's json_valid checks every line, and a line's resourceType and id are read from its head
(_HEAD: the two keys bulk exports write first, strings without escapes) or, for any other shape, by
DuckDB's JSON functions. A line DuckDB cannot vouch for goes through `_parse_ndjson_line`, the
per-line reading, which decides its row or its reason code: text that is not UTF-8, a line over
MAX_LINE_BYTES or still ending in \\r, one DuckDB finds invalid, a Bundle, an id that is not a string,
and text DuckDB's lenient parser would read otherwise than Python's json (_LENIENT). So every line
gets exactly the row or the reason code of the per-line reading, a block at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest.fhir_rows import _NDJSON_RAW_SCHEMA
from rwe_assets.lib.raw_ingest.model import READ_CHUNK, Provenance, package
from rwe_assets.lib.raw_ingest.ndjson_lines import _check_ndjson_start, _parse_ndjson_line
from rwe_assets.lib.raw_ingest.quarantine import _quarantine_table, _write_quarantine
from rwe_assets.lib.raw_ingest.scan import open_decompressed, scan_file
from rwe_assets.lib.sources import OTHER_RESOURCE

BLOCK_BYTES = 8 << 20
# Lines DuckDB's JSON functions (yyjson, lenient flags) would read otherwise than Python's json.loads:
# a trailing comma or nan/inf (accepted by DuckDB only), a repeated "resourceType" or "id" key (the
# first kept by DuckDB, the last by Python; nested ids match too). A match inside a string value only
# sends the line to the slower per-line reading.
_LENIENT = (
    r',\s*[\]}]|[:,\[]\s*[-+]?(?i:nan|inf)|"resourceType".*"resourceType"|"id".*"id"'
    r'|"[^"]*\\u[0-9a-fA-F]{4}[^"]*"\s*:'  # an escaped key ("resource\u0054ype") the pattern above misses
    r"|\\u[dD][89a-fA-F]"  # a UTF-16 surrogate escape: Python keeps a lone one, text cannot hold it
)


_WS = r"[ \t\r\n]*"  # JSON's whitespace (RE2's \s would also take \f)
# The usual head of a bulk export line: resourceType then id, both strings without escapes. On a line
# DuckDB finds valid and _LENIENT does not flag, these are the values json.loads gives (a key repeated
# later is a _LENIENT match), so no JSON function has to read them.
_HEAD = (
    rf'^{_WS}\{{{_WS}"resourceType"{_WS}:{_WS}"(?P<resource_type>[^"\\]+)"{_WS},'
    rf'{_WS}"id"{_WS}:{_WS}"(?P<resource_id>[^"\\]*)"{_WS}[,}}]'
)

_VALID = "SELECT coalesce(json_valid(t), false) AS valid FROM ndjson_block"
# For a valid line without that head: resourceType and id from DuckDB's JSON functions.
_CLASSIFY = """
    WITH parsed AS (SELECT t, json_extract(t, ['$.resourceType', '$.id']) AS v FROM ndjson_block)
    SELECT
        coalesce(json_type(v[1]) = 'VARCHAR' AND json_extract_string(v[1], '$') NOT IN ('', 'Bundle')
            AND coalesce(json_type(v[2]) IN ('VARCHAR', 'NULL'), true), false) AS fast,
        json_extract_string(v[1], '$') AS resource_type,
        json_extract_string(v[2], '$') AS resource_id
    FROM parsed
"""


_ROWS_SCHEMA = pa.schema(
    [
        ("number", pa.int64()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("text", pa.string()),
    ]
)


@dataclass
class _BlockRows:
    """What one block of lines gave: one row per line in line order, the entity of each line stored
    (null for a line quarantined) and the quarantine rows."""

    rows: pa.Table
    entity: pa.Array
    records: int
    quarantine: list[tuple] = field(default_factory=list)


def _line_blocks(stream, cap: int) -> Iterator[tuple[int, np.ndarray, np.ndarray] | tuple[int, int, None]]:
    """(first line number, whole lines, positions of their newlines) blocks of a binary stream, each
    read into an array of its own (no copy of its bytes, one newline search), and (line number,
    length, None) for a line over `cap` bytes that no block holds: read through, never held whole."""
    number, carry = 1, b""
    while True:
        block = np.empty(len(carry) + BLOCK_BYTES, dtype=np.uint8)
        block[: len(carry)] = np.frombuffer(carry, dtype=np.uint8)
        read = _read_into(stream, memoryview(block)[len(carry) :])
        if not read:
            break
        data = block[: len(carry) + read]
        newlines = np.flatnonzero(data == 10)
        cut = int(newlines[-1]) + 1 if len(newlines) else 0
        if cut:
            yield number, data[:cut], newlines
            number += len(newlines)
        carry = data[cut:].tobytes()
        if len(carry) > cap:
            length, carry = _skip_line(stream, carry, cap)
            yield number, length, None
            number += 1
    if carry:  # the last line without a newline, or what followed a line over the cap
        tail = np.frombuffer(carry, dtype=np.uint8)
        yield number, tail, np.flatnonzero(tail == 10)


def _read_into(stream, view: memoryview) -> int:
    """Fills `view` from the stream (a read may return less); the bytes read, fewer only at its end."""
    filled = 0
    while filled < len(view) and (count := stream.readinto(view[filled:])):
        filled += count
    return filled


def _skip_line(stream, head: bytes, cap: int) -> tuple[int, bytes]:
    """Reads through a line that began with `head` (no newline in it yet); its length as
    `_bounded_lines` tells it, and the bytes after its newline."""
    length, trailing_cr = len(head), len(head) - len(head.rstrip(b"\r"))
    while chunk := stream.read(READ_CHUNK):
        cut = chunk.find(b"\n")
        piece = chunk if cut < 0 else chunk[:cut]
        stripped = len(piece) - len(piece.rstrip(b"\r"))
        trailing_cr = trailing_cr + stripped if stripped == len(piece) else stripped
        length += len(piece)
        if cut >= 0:
            return _capped_length(length, trailing_cr, True, cap), chunk[cut + 1 :]
    return _capped_length(length, trailing_cr, False, cap), b""


def _capped_length(content: int, trailing_cr: int, newline: bool, cap: int) -> int:
    """The length `_bounded_lines` reports for a line of `content` bytes (its newline aside) over the
    cap: it reads cap + 1 bytes, then pieces of READ_CHUNK, and strips \\r only from the last piece."""
    if not newline:
        return content
    last_start = cap + 1 + ((content - cap - 1) // READ_CHUNK) * READ_CHUNK
    return content - min(trailing_cr, max(content - last_start, 0))


def _split_lines(
    buf: np.ndarray, newlines: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    """Line starts, content ends (newline excluded) and text ends (one \\r before the newline excluded)
    of a block, and the lines' text as one Arrow binary array built without a per-line loop."""
    ends = newlines if buf[-1] == 10 else np.append(newlines, len(buf))
    starts = np.concatenate(([0], newlines[: len(ends) - 1] + 1))
    carriage = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    text_ends = ends - carriage
    if buf[-1] == 10 and not carriage.any():  # each line and its "\n" in place, then the "\n" cut off
        offsets = np.append(starts, len(buf)).astype(np.int32)
        lines = pa.Array.from_buffers(
            pa.binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
        )
        return starts, ends, text_ends, pc.binary_slice(lines, 0, -1)
    keep = np.ones(len(buf), dtype=bool)
    keep[newlines] = False
    keep[text_ends[carriage]] = False
    offsets = np.concatenate(([0], np.cumsum(text_ends - starts))).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(buf[keep])]
    return starts, ends, text_ends, pa.Array.from_buffers(pa.binary(), len(starts), buffers)


def _block_rows(
    con, first: int, buf: np.ndarray, newlines: np.ndarray, known: set[str], cap: int
) -> _BlockRows:
    starts, ends, text_ends, binary = _split_lines(buf, newlines)
    suspect = (ends - starts > cap) | ((text_ends > starts) & (buf[np.maximum(text_ends - 1, 0)] == 13))
    text = _as_text(binary, suspect)
    fast, resource_type, resource_id = _classify(con, text, suspect)
    numbers = pa.array(np.arange(first, first + len(starts), dtype=np.int64))
    columns = [numbers, resource_type, resource_id, text]
    slow, quarantine = _per_line(buf, first, starts, ends, np.flatnonzero(~fast), known, cap)
    stored = fast.copy()
    if slow:  # lines the per-line reading stores: its values replace DuckDB's
        at = np.isin(numbers.to_numpy(), [line.number for line in slow])
        stored |= at
        for index, values in ((1, "resource_type"), (2, "resource_id"), (3, "text")):
            new = pa.array([getattr(line, values) for line in slow], pa.string())
            columns[index] = pc.replace_with_mask(columns[index], pa.array(at), new)
    kept_type = pc.if_else(pa.array(stored), columns[1], pa.scalar(None, pa.string()))
    rows = pa.table(columns, schema=_ROWS_SCHEMA)
    return _BlockRows(rows, _entities(kept_type, known), len(starts), quarantine)


def _per_line(buf, first, starts, ends, indices, known, cap) -> tuple[list, list[tuple]]:
    """The lines at `indices` read one by one: those stored (_NdjsonLine) and the quarantine rows."""
    stored, quarantine = [], []
    for k in indices.tolist():
        raw = buf[starts[k] : ends[k] + 1].tobytes()
        if ends[k] - starts[k] > cap:  # its length, as the per-line reader reports it
            raw = _capped_length(int(ends[k] - starts[k]), _trailing_cr(raw), raw.endswith(b"\n"), cap)
        line = _parse_ndjson_line(first + k, raw, known)
        if line.reason:
            quarantine.append(line.quarantine_row())
        else:
            stored.append(line)
    return stored, quarantine


def _classify(con, text: pa.Array, suspect: np.ndarray) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Which lines the block path stores (valid, not suspect, a usable resourceType and id) and their
    resourceType and id: from the line's head (_HEAD) where it has one, else from DuckDB's JSON
    functions, which then read only those lines."""
    valid = _query(con, _VALID, text).column("valid").to_numpy(zero_copy_only=False)
    head = pc.extract_regex(text, _HEAD)
    resource_type, resource_id = pc.struct_field(head, "resource_type"), pc.struct_field(head, "resource_id")
    has_head = head.is_valid().to_numpy(zero_copy_only=False)
    fast = (
        valid
        & has_head
        & ~suspect
        & pc.not_equal(resource_type, "Bundle").fill_null(False).to_numpy(zero_copy_only=False)
    )
    others = valid & ~has_head & ~suspect
    if others.any():
        found = _query(con, _CLASSIFY, text.filter(pa.array(others)))
        fast[others] = found.column("fast").to_numpy(zero_copy_only=False)
        mask = pa.array(others)
        resource_type = pc.replace_with_mask(
            resource_type, mask, found.column("resource_type").combine_chunks()
        )
        resource_id = pc.replace_with_mask(resource_id, mask, found.column("resource_id").combine_chunks())
    return fast, resource_type, resource_id


def _query(con, sql: str, text: pa.Array) -> pa.Table:
    """`sql` over the lines; they go in as a few record batches, which DuckDB's threads share."""
    lines = pa.Table.from_arrays([text], names=["t"])
    con.register("ndjson_block", pa.Table.from_batches(lines.to_batches(max_chunksize=len(text) // 4 + 1)))
    found = con.execute(sql).to_arrow_table()
    con.unregister("ndjson_block")
    return found


def _trailing_cr(raw: bytes) -> int:
    content = raw.rstrip(b"\n")
    return len(content) - len(content.rstrip(b"\r"))


def _as_text(binary: pa.Array, suspect: np.ndarray) -> pa.Array:
    """The lines as strings (null where not UTF-8). Marks as suspect, in place, a line that is not
    UTF-8 or that DuckDB would read otherwise than Python's json (_LENIENT)."""
    try:
        text = binary.cast(pa.string())
    except pa.ArrowInvalid:
        utf8 = np.array([_is_utf8(v) for v in binary.to_pylist()], dtype=bool)
        suspect |= ~utf8
        text = pc.if_else(pa.array(utf8), binary, pa.scalar(None, pa.binary())).cast(pa.string())
    suspect |= pc.match_substring_regex(text, _LENIENT).fill_null(False).to_numpy(zero_copy_only=False)
    return text


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _entities(resource_types: pa.Array, known: set[str]) -> pa.Array:
    """Each stored row's entity: its lower-cased resourceType when the source declares it, else `other`."""
    distinct = pc.unique(resource_types.drop_null())
    names = [t.lower() if t.lower() in known else OTHER_RESOURCE for t in distinct.to_pylist()]
    return pc.take(pa.array(names, pa.string()), pc.index_in(resource_types, distinct))


def _file_blocks(path: Path, relative: str, known: set[str]) -> Iterator[_BlockRows]:
    """The file's blocks, each read while the caller writes the one before (a worker thread: DuckDB,
    numpy and Arrow release the GIL, as does the Delta writer)."""
    cap = package().MAX_LINE_BYTES
    con = duckdb.connect()
    try:
        with open_decompressed(path) as content, ThreadPoolExecutor(1) as worker:
            pending = None
            for first, data, newlines in _line_blocks(content, cap):
                job = worker.submit(_one_block, con, first, data, newlines, known, cap)
                if pending is not None:
                    yield pending.result()
                pending = job
            if pending is not None:
                yield pending.result()
    except (EOFError, OSError, zlib.error) as error:
        raise InputFileError(relative, f"unreadable or truncated file ({type(error).__name__})") from None
    finally:
        con.close()


def _one_block(con, first: int, data: np.ndarray | int, newlines, known: set[str], cap: int) -> _BlockRows:
    if isinstance(data, int):  # a line over the cap, its length
        line = _parse_ndjson_line(first, data, known)
        quarantined = [line.quarantine_row()]
        return _BlockRows(_ROWS_SCHEMA.empty_table(), pa.array([], pa.string()), 1, quarantined)
    return _block_rows(con, first, data, newlines, known, cap)


class _NdjsonPass:
    """One read of an NDJSON file that streams the rows of one entity. The first pass takes the entity
    of the first valid line and also counts records and collects quarantined lines."""

    def __init__(self, path: Path, relative: str, known: set[str], entity: str | None):
        self.path, self.relative, self.known = path, relative, known
        self.entity, self.first_pass = entity, entity is None
        self.rows, self.records = 0, 0
        self.seen: set[str] = set()
        self.quarantine: list[tuple] = []
        self.error: InputFileError | None = None  # the file's own fault, seen inside the Delta write

    def batches(self, provenance: Provenance) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches(provenance)
        except InputFileError as error:
            self.error = error
            raise

    def _batches(self, provenance: Provenance) -> Iterator[pa.RecordBatch]:
        for block in _file_blocks(self.path, self.relative, self.known):
            if self.first_pass:
                self.records += block.records
                self.quarantine.extend(block.quarantine)
            entities = pc.unique(block.entity.drop_null()).to_pylist()
            if not entities:
                continue
            self.seen.update(entities)
            self.entity = self.entity or pc.drop_null(block.entity)[0].as_py()
            mine = pc.equal(block.entity, self.entity).fill_null(False)
            rows = block.rows if pc.all(mine).as_py() else block.rows.filter(mine)
            self.rows += rows.num_rows
            for batch in rows.to_batches(max_chunksize=package().NDJSON_BATCH_ROWS):
                yield _raw_batch(batch, provenance)


def _raw_batch(batch: pa.RecordBatch, provenance: Provenance) -> pa.RecordBatch:
    numbers = batch.column("number").to_numpy()
    columns = [batch.column("resource_type"), batch.column("resource_id"), batch.column("text")]
    columns += [array for _, array in provenance.columns(numbers)]
    return pa.RecordBatch.from_arrays(columns, schema=_NDJSON_RAW_SCHEMA)


def _ingest_ndjson(lake_dir, source, path, provenance, result) -> None:
    """One pass per resource type in the file (bulk exports hold one type per file, so usually one
    pass), each an atomic replace of this file's rows in that entity's table. The first pass counts
    the lines (batch.py hashes an NDJSON file without a line scan)."""
    try:
        _check_ndjson_start(path, result.relative_path)
        first = _read_passes(lake_dir, source, path, provenance, result)
        if not result.rows_stored:  # nothing stored: an empty file is refused as the line scan refuses it
            scan_file(path, result.relative_path)
    except InputFileError:
        # a truncated gzip: the error of the line scan, which tells the line it ends after
        scan_file(path, result.relative_path)
        raise
    result.records_read = result.lines_read = first.records
    quarantined = _quarantine_table(source.name, None, first.quarantine, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.rows_quarantined = quarantined.num_rows


def _read_passes(lake_dir, source, path, provenance, result) -> _NdjsonPass:
    known = set(source.entity_names)
    first, pending = None, [None]
    while pending:
        current = _NdjsonPass(path, result.relative_path, known, pending.pop(0))
        stream = current.batches(provenance)
        head = next(stream, None)  # reading one batch tells the entity of this pass
        if head is not None:
            target = lake.table_path(lake_dir, "raw", source.name, current.entity)
            reader = pa.RecordBatchReader.from_batches(_NDJSON_RAW_SCHEMA, _chain(head, stream))
            try:
                lake.replace_file_rows(target, reader, provenance.file_sha256)
            except Exception:
                if current.error is None:
                    raise
                raise current.error from None  # delta-rs wraps the reader's exception: unwrap it
            result.rows_stored[current.entity] = current.rows
        if first is None:
            first = current
            pending = sorted(current.seen - {current.entity})
    return first


def _chain(first, rest):
    yield first
    yield from rest
