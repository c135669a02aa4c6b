"""The NDJSON block reader's quick paths give the rows and reason codes of the per-line reading: a
line's resourceType and id taken from its head (ndjson._HEAD) or, for any other shape, from DuckDB's
JSON functions; the newline cut in place (LF files) or by a mask (CR LF); blocks read into arrays."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rwe_assets.lib.raw_ingest import ndjson
from rwe_assets_tests.lib.test_raw_ndjson_blocks import ingest_and_compare

# Each line's way: H = the head gives type and id, D = DuckDB's JSON functions, S = the per-line reading.
LINES = [
    b'{"resourceType":"Patient","id":"a1"}',  # H
    b' \t{ "resourceType" :\t"Patient" , "id" : "a2" , "x": [1]}',  # H, JSON whitespace everywhere
    b'{"resourceType":"Patient","id":""}',  # H, an empty id
    b'{"resourceType":"Patient","id":"\xc3\xa9t\xc3\xa9"}',  # H, UTF-8 in the id
    b'{"resourceType":"Patient","id":"a3"}  ',  # H, trailing blanks
    b'{"id":"d1","resourceType":"Condition"}',  # D: id first
    b'{"resourceType":"Condition","meta":{"id":"x"},"id":"d2"}',  # S: "id" twice (_LENIENT)
    b'{"resourceType":"Condition","status":"active","id":"d3"}',  # D: id after another key
    b'{"resourceType":"Condition"}',  # D: no id
    b'{"resourceType":"Condition","id":7}',  # D: a number id
    b'{"resourceType":"Condition","id":null}',  # D
    b'{"resourceType":"Condition","id":"e\\u0041"}',  # D: an escape in the id ("eA")
    b'{"resourceType":"Pati\\u0065nt","id":"e2"}',  # D: an escape in the type ("Patient")
    b'{"resourceType":"Condition","id":"q\\"uote"}',  # D: an escaped quote
    b'{"resourceType":"Bundle","id":"b1","type":"collection"}',  # S: BUNDLE_IN_NDJSON
    b'{"resourceType":"Bundle","id":"b2","type":"document"}',  # S: a document Bundle is a resource
    b'{"resourceType":"Patient","id":"i1"} x',  # S: MALFORMED_JSON
    b'{"resourceType":"Patient","id":"i2"',  # S: truncated
    b'{"resourceType":"Patient","id":"i3"}]',  # S
    b'{"resourceType":"","id":"i4"}',  # S: MISSING_RESOURCE_TYPE
    b'{"resourceType":"Patient","id":"i5",}',  # S: a trailing comma
    b"",  # S: EMPTY_LINE
    b'{"resourceType":"Observation","id":"z1"}',  # H, the last line
]


def _file(newline: bytes, last_newline: bool) -> bytes:
    return newline.join(LINES) + (newline if last_newline else b"")


@pytest.mark.parametrize("block_bytes", [64, 1000, ndjson.BLOCK_BYTES])
@pytest.mark.parametrize(
    ("name", "newline", "last_newline"),
    [("lf.ndjson", b"\n", True), ("crlf.ndjson", b"\r\n", True), ("lf.ndjson.gz", b"\n", False)],
)
def test_every_path_reads_alike(registry, dirs, monkeypatch, block_bytes, name, newline, last_newline):
    monkeypatch.setattr(ndjson, "BLOCK_BYTES", block_bytes)
    (result,) = ingest_and_compare(registry, dirs, {name: _file(newline, last_newline)})
    assert result.records_read == len(LINES)
    assert result.rows_stored == {"patient": 6, "condition": 8, "other_resource": 2}


def test_an_escaped_head_is_left_to_duckdb(registry, dirs, monkeypatch):
    """Taken from the head, "e\\u0041" would be stored as written, not as the "eA" json.loads reads."""
    monkeypatch.setattr(ndjson, "_HEAD", ndjson._HEAD.replace('[^"\\\\]*', '[^"]*'))
    with pytest.raises(AssertionError):
        ingest_and_compare(registry, dirs, {"lf.ndjson": _file(b"\n", True)})


def test_lines_the_head_reads_never_reach_duckdbs_json_functions(registry, dirs, monkeypatch):
    """A file of usual lines costs one JSON parse per line (json_valid), not the extraction query."""
    monkeypatch.setattr(ndjson, "_CLASSIFY", "SELECT error('extraction query ran')")
    heads = [*LINES[:5], LINES[-1]]
    (result,) = ingest_and_compare(registry, dirs, {"h.ndjson": b"\n".join(heads)})
    assert result.rows_stored == {"patient": 5, "other_resource": 1}


class _ShortReads(io.RawIOBase):
    """A stream that gives at most 7 bytes per read, as a pipe or a decompressor may."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:
        chunk = self._data.read(min(len(view), 7))
        view[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("block_bytes", [5, 64, 1 << 20])
def test_blocks_hold_every_line_once_with_its_number(monkeypatch, block_bytes):
    monkeypatch.setattr(ndjson, "BLOCK_BYTES", block_bytes)
    data = _file(b"\n", False)
    lines = {}
    for first, block, newlines in ndjson._line_blocks(_ShortReads(data), cap=1000):
        assert np.array_equal(newlines, np.flatnonzero(block == 10))
        for k, line in enumerate(block.tobytes().split(b"\n")[: len(newlines) + (block[-1] != 10)]):
            lines[first + k] = line
    assert lines == dict(enumerate(LINES, start=1))
