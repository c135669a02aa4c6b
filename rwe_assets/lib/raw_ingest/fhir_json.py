"""FHIR JSON documents.

A *.json / *.json.gz file of an NDJSON (FHIR) source holds one JSON document: a FHIR Bundle of a type
in BUNDLE_TYPES (Synthea's default output: one transaction Bundle per patient), or one resource. Each
Bundle entry's resource becomes one raw row exactly like an NDJSON line (same columns; the entity is
the lower-cased resourceType); _line_number holds the entry index + 1 (a single resource: 1). The
resource is re-serialized compactly with numbers kept as written (1.50 stays 1.50). Anything else is
refused with the file and line, before a row is written.

A DELETE entry of a transaction or batch Bundle whose request.url names `Type/id` is kept as a raw row
of that type and id whose resource_json is `{"request": <the request as sent>}` (DELETE_ROW_PREFIX),
with `"meta": {"lastUpdated": ...}` when the Bundle states its meta.lastUpdated (the deletion's instant):
staging retires the record with the status reason DELETED (lib/staging/lifecycle.py), ordered among
its versions by that instant as a resource is by its own. FHIR R4
processes a transaction's DELETEs before its POSTs and PUTs, so a DELETE of a resource the same Bundle
writes removes only its earlier versions: the write stands and the DELETE is quarantined
(BUNDLE_DELETE_BEFORE_WRITE). A batch Bundle has no order: both entries are quarantined
(BUNDLE_DELETE_CONFLICT). A conditional delete (`Type?search`) or a url naming no `Type/id` is
quarantined (BUNDLE_DELETE_UNRESOLVED), never resolved by a guess.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pyarrow as pa

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest.fhir_rows import (
    _NDJSON_RAW_SCHEMA,
    BUNDLE_TYPES,
    _ndjson_batch,
    _NdjsonLine,
)
from rwe_assets.lib.raw_ingest.quarantine import _quarantine_table, _write_quarantine
from rwe_assets.lib.raw_ingest.scan import open_decompressed
from rwe_assets.lib.sources import OTHER_RESOURCE

_JSON_SUFFIXES = (".json", ".json.gz")
# The document is parsed whole with the json module (ijson is not a dependency): a Synthea patient
# Bundle is a few MB. Larger documents are refused; send them as bulk NDJSON.
MAX_JSON_DOCUMENT_BYTES = 512 << 20
# The raw resource_json of a DELETE entry starts so; no resource does (it starts with a key of its own).
DELETE_ROW_PREFIX = '{"request":'
# request.url of a DELETE: [base/]Type/id (FHIR id: 1-64 of A-Z a-z 0-9 - .), no search, no _history
_DELETE_URL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")
_DELETE_BUNDLES = ("transaction", "batch")


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


# FHIR's fixed Bundle.type codes (R4, and R5's subscription-notification): quoted in an error; any
# other value is the sender's text (a name typed in the wrong field), named by its field only
_BUNDLE_TYPE_CODES = (
    "document", "message", "transaction", "transaction-response", "batch", "batch-response", "history",
    "searchset", "collection", "subscription-notification",
)  # fmt: skip


def _json_document_entries(document, relative: str) -> tuple[str | None, list]:
    """(Bundle type, its entries), or (None, the single resource as one entry)."""
    if not isinstance(document, dict):
        found = type(document).__name__.replace("list", "array").replace("_JsonNumber", "number")
        raise InputFileError(
            relative, f"expected a JSON object (a FHIR Bundle or one resource), found a JSON {found}", line=1
        )
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InputFileError(relative, "expected a FHIR Bundle or resource, found no resourceType", line=1)
    if resource_type != "Bundle":
        return None, [{"resource": document}]
    bundle_type = document.get("type")
    if bundle_type not in BUNDLE_TYPES:
        if bundle_type is None:
            found = "no Bundle.type"
        elif bundle_type in _BUNDLE_TYPE_CODES:
            found = bundle_type
        else:
            found = "a Bundle.type that is not a FHIR code"
        raise InputFileError(
            relative, f"expected a Bundle of type {', '.join(BUNDLE_TYPES)}, found {found}", line=1
        )
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise InputFileError(relative, "expected Bundle.entry to be an array", line=1)
    return bundle_type, entries


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


def _delete_request(item) -> dict | None:
    """The request of a DELETE entry, or None."""
    request = item.get("request") if isinstance(item, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    return request if isinstance(method, str) and method.upper() == "DELETE" else None


def bundle_instant(bundle: dict) -> str | None:
    """A Bundle's meta.lastUpdated as sent (text), or None: the instant of its DELETE entries."""
    meta = bundle.get("meta")
    instant = meta.get("lastUpdated") if isinstance(meta, dict) else None
    return instant if isinstance(instant, str) and instant else None


def _delete_entry(
    number: int, item: dict, bundle_type: str | None, known: set[str], instant: str | None = None
) -> _NdjsonLine:
    """A DELETE entry as the raw row of its Type/id (resource_json: DELETE_ROW_PREFIX + the request, and
    `meta.lastUpdated`: the deletion's instant, when known, which orders it among the record's versions
    as a resource's own does), or the reason it is quarantined. The detail never quotes the url: search
    criteria can hold identifiers."""
    where, text = f"entry {number - 1}", _json_text(item)
    if bundle_type not in _DELETE_BUNDLES:
        detail = f"{where}: a {bundle_type} Bundle holds no requests; DELETE not applied"
        return _NdjsonLine(number, text, None, None, None, "BUNDLE_DELETE_NOT_SUPPORTED", detail)
    request = item["request"]
    url = request.get("url")
    target = _DELETE_URL.search(url) if isinstance(url, str) and "?" not in url else None
    if target is None:
        kind = (
            "a conditional delete (search criteria)" if isinstance(url, str) and "?" in url else "no Type/id"
        )
        detail = f"{where}: request.url of the DELETE is {kind}; not resolved, not applied"
        return _NdjsonLine(number, text, None, None, None, "BUNDLE_DELETE_UNRESOLVED", detail)
    resource_type, resource_id = target.groups()
    entity = resource_type.lower() if resource_type.lower() in known else OTHER_RESOURCE
    return _NdjsonLine(
        number, DELETE_ROW_PREFIX + _json_text(request) + _meta_text(instant) + "}", entity, resource_type,
        resource_id,
    )  # fmt: skip


def _meta_text(instant: str | None) -> str:
    return "" if instant is None else ',"meta":' + _json_text({"lastUpdated": instant})


def _bundle_lines(
    bundle_type: str | None, entries: list, known: set[str], instant: str | None = None
) -> list[_NdjsonLine]:
    """Every entry as a raw row or a quarantined line (DELETE entries by _delete_entry, stamped with the
    Bundle's `instant`), then the DELETEs of a resource the Bundle also writes resolved by the Bundle
    type's rule (module docstring)."""
    deletes = [_delete_request(item) is not None for item in entries]
    lines = [
        _delete_entry(n + 1, item, bundle_type, known, instant)
        if deletes[n]
        else _bundle_entry(n + 1, item, known)
        for n, item in enumerate(entries)
    ]
    writes: dict[tuple, list[int]] = {}
    for n, line in enumerate(lines):
        if line.entity and not deletes[n]:
            writes.setdefault((line.resource_type, line.resource_id), []).append(n)
    for n, line in enumerate(lines):
        written = writes.get((line.resource_type, line.resource_id)) if line.entity and deletes[n] else None
        if not written:
            continue
        if bundle_type == "transaction":
            lines[n] = _overlap(n, entries[n], "BUNDLE_DELETE_BEFORE_WRITE", _DELETE_FIRST)
        else:
            for k in [n, *written]:
                lines[k] = _overlap(k, entries[k], "BUNDLE_DELETE_CONFLICT", _NO_ORDER)
    return lines


_DELETE_FIRST = (
    "FHIR processes a transaction's DELETEs before its POSTs and PUTs: the write of this resource stands"
)
_NO_ORDER = (
    "a batch Bundle has no processing order and both deletes and writes this resource: neither applied"
)


def _overlap(index: int, item, reason: str, why: str) -> _NdjsonLine:
    """An entry of a DELETE and a write of one resource in one Bundle, quarantined."""
    return _NdjsonLine(index + 1, _json_text(item), None, None, None, reason, f"entry {index}: {why}")


def _ingest_fhir_json(lake_dir, source, path, provenance, result) -> None:
    """One FHIR Bundle (or one resource) per file: its entries to their entities' tables (one atomic
    replace of this file's rows per entity), the entries that are not resources to the quarantine."""
    from rwe_assets.lib.raw_ingest import bulk_export  # it reads documents with this module

    relative = result.relative_path
    document = _read_json_document(path, relative)
    if bulk_export.is_bulk_manifest(document):
        bulk_export.record_manifest(path, document, result)
        return
    bundle_type, entries = _json_document_entries(document, relative)
    instant = bundle_instant(document) if bundle_type else None
    lines = _bundle_lines(bundle_type, entries, set(source.entity_names), instant)
    _store_lines(lake_dir, source, lines, provenance, result)


def _store_lines(lake_dir, source, lines: list[_NdjsonLine], provenance, result) -> None:
    """Raw rows to their entities' tables (one atomic replace of this file's rows per entity), the
    quarantined lines to the quarantine; the counts to `result`."""
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
    bad = [line.quarantine_row() for line in lines if line.reason]
    quarantined = _quarantine_table(source.name, None, bad, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.records_read, result.rows_quarantined = len(lines), quarantined.num_rows
    deletes = sum(bool(line.reason and line.reason.startswith("BUNDLE_DELETE_")) for line in lines)
    if deletes:
        result.warnings.append(
            f"{deletes} Bundle entr{'ies' if deletes > 1 else 'y'} of a DELETE quarantined "
            f"(BUNDLE_DELETE_*): not applied"
        )
