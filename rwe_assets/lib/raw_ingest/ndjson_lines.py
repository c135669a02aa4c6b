"""NDJSON, one line at a time: the reference reading of a line (its raw row or its reason code), used
for the lines that the block reader (ndjson.py) cannot vouch for, and for the start-of-file check."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from rwe_assets.errors import InputFileError
from rwe_assets.lib.raw_ingest.fhir_rows import BUNDLE_TYPES, _NdjsonLine
from rwe_assets.lib.raw_ingest.model import package
from rwe_assets.lib.raw_ingest.scan import _bounded_lines, open_decompressed
from rwe_assets.lib.sources import OTHER_RESOURCE


def _parse_ndjson_line(number: int, raw: bytes | int, known: set[str]) -> _NdjsonLine:
    if isinstance(raw, int):  # _bounded_lines: the length of a line over the cap, not kept
        detail = f"line of {raw} bytes, longer than the cap of {package().MAX_LINE_BYTES >> 20} MiB"
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
    resource_id = None if resource_id is None else str(resource_id)
    if not _encodable(resource_type) or not _encodable(resource_id):  # "\ud800": valid JSON, not text
        detail = "resourceType or id holds an unpaired UTF-16 surrogate escape"
        return _NdjsonLine(number, text, None, None, None, "INVALID_ENCODING", detail)
    return _NdjsonLine(number, text, entity, resource_type, resource_id)


def _encodable(value: str | None) -> bool:
    try:
        if value is not None:
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _ndjson_lines(path: Path, relative: str, known: set[str]) -> Iterator[_NdjsonLine]:
    try:
        with open_decompressed(path) as content:
            for number, raw in enumerate(_bounded_lines(content), start=1):
                yield _parse_ndjson_line(number, raw, known)
    except (EOFError, OSError, zlib.error) as error:
        raise InputFileError(relative, f"unreadable or truncated file ({type(error).__name__})") from None
