"""FHIR Bulk Data export manifests and the `deleted` files they name (Bulk Data Access v2).

A bulk export ends with a manifest: a JSON object with `transactionTime`, `output` (the NDJSON files of
resources) and, for an export `_since` a time, `deleted`: files of which each line is a transaction
Bundle whose entries are DELETE requests naming `Type/id`. Landed as a .json file of the batch, beside
the files it lists, the manifest is ingested with no rows (it holds no record), a warning naming each
listed file the batch does not hold (its resources, or its deletions, are missing from the batch).

A file the `deleted` array names (by the file name of its url, in the manifest's folder) is read as a
deletion list: each entry goes through the Bundle DELETE path of fhir_json.py, so it becomes the raw
row of its Type/id that staging retires as DELETED (lib/staging/lifecycle.py); a conditional or
unresolvable url is quarantined there (BUNDLE_DELETE_UNRESOLVED). Each DELETE row carries the instant
of its deletion when its Bundle states one (meta.lastUpdated), so staging orders it among the record's
versions. A Bundle without one leaves the deletion undated, never dated by the manifest's
transactionTime: that is later than every resource of the export, and a resource both in its output and
deleted was re-created after the deletion (the output holds what exists at transactionTime), so within
the export the dated resource is current; against earlier batches the deletion is the later one. An entry that
is no DELETE (BULK_DELETED_NOT_A_DELETE), a line that is no transaction Bundle
(BULK_DELETED_NOT_A_BUNDLE) or no JSON is quarantined, never applied. Rows are numbered by entry in
file order: servers write one entry per line, so that is the line number. Without a manifest naming it, a file of Bundles is refused as
any NDJSON file of Bundles is (ndjson_lines.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from rwe_assets.errors import InputFileError
from rwe_assets.lib.raw_ingest.fhir_json import (
    _delete_entry,
    _delete_request,
    _json_text,
    _JsonNumber,
    _read_json_document,
    _refuse_constant,
    _store_lines,
    bundle_instant,
    is_json_document,
)
from rwe_assets.lib.raw_ingest.fhir_rows import _NdjsonLine
from rwe_assets.lib.raw_ingest.ndjson_lines import _ndjson_lines
from rwe_assets.lib.raw_ingest.scan import batch_files

# A manifest is small (a line per listed file): larger JSON documents are not looked into for one.
MAX_MANIFEST_BYTES = 64 << 20
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")


def is_bulk_manifest(document) -> bool:
    """A Bulk Data manifest: transactionTime and an output array, and no FHIR resourceType (v4 examples
    name the logical model's URL there)."""
    if not isinstance(document, dict) or "transactionTime" not in document:
        return False
    kind = document.get("resourceType")
    return isinstance(document.get("output"), list) and not (
        isinstance(kind, str) and _RESOURCE_TYPE.match(kind)
    )


def _listed_names(document: dict, key: str) -> list[str | None]:
    """The file name of each item's url in the manifest's `key` array (None: no usable url)."""
    names = []
    for item in document.get(key) or []:
        url = item.get("url") if isinstance(item, dict) else None
        name = Path(urlparse(url).path).name if isinstance(url, str) else ""
        names.append(name or None)
    return names


def record_manifest(path: Path, document: dict, result) -> None:
    """A manifest's ingest: no rows; a warning for each listed file its folder does not hold."""
    result.records_read = result.rows_quarantined = 0
    for key, what in (("output", "resources"), ("deleted", "deletions")):
        names = _listed_names(document, key)
        missing = [n or "(no url)" for n in names if n is None or not (path.parent / n).is_file()]
        if missing:
            result.warnings.append(
                f"bulk export manifest: {len(missing)} of its {len(names)} {key} files are not in this "
                f"batch ({', '.join(sorted(missing)[:5])}): their {what} are not applied"
            )


class BatchManifests:
    """The deletion lists the manifests of one batch name, found on first use (an NDJSON file)."""

    def __init__(self, batch_path: Path):
        self._batch_path = batch_path
        self._deleted: set[Path] | None = None

    def is_deleted_list(self, path: Path) -> bool:
        if self._deleted is None:
            self._deleted = self._find()
        return path.resolve() in self._deleted

    def _find(self) -> set[Path]:
        return {
            (path.parent / n).resolve()
            for path, document in _manifests(batch_files(self._batch_path))
            for n in _listed_names(document, "deleted")
            if n
        }


def _manifests(paths):
    """(path, document) of each bulk export manifest among `paths`."""
    for path in paths:
        if path.is_symlink() or not is_json_document(path.name) or path.stat().st_size > MAX_MANIFEST_BYTES:
            continue
        try:
            document = _read_json_document(path, path.name)
        except InputFileError:
            continue  # the file fails on its own when it is ingested
        if is_bulk_manifest(document):
            yield path, document


def ingest_deleted_list(lake_dir, source, path: Path, provenance, result) -> None:
    """A manifest's deleted file: its DELETE entries as raw rows, the rest quarantined (module docstring)."""
    known, lines, text_lines = set(source.entity_names), [], 0
    for line in _ndjson_lines(path, result.relative_path, known):
        text_lines += 1
        if line.reason == "BUNDLE_IN_NDJSON":
            lines += _entries(line, known)
        elif line.reason:
            lines.append(line)
        else:
            lines.append(_not_a_bundle(line, "a resource"))
    lines = [replace(line, number=k) for k, line in enumerate(lines, start=1)]
    _store_lines(lake_dir, source, lines, provenance, result)
    result.lines_read = text_lines


def _entries(line: _NdjsonLine, known: set[str]) -> list[_NdjsonLine]:
    """One line's Bundle: its DELETE entries through the Bundle DELETE path, stamped with the Bundle's
    meta.lastUpdated when it states one; any other entry quarantined."""
    try:  # as fhir_json reads a document: numbers kept as written, NaN and Infinity refused
        bundle = json.loads(line.text, parse_float=_JsonNumber, parse_constant=_refuse_constant)
    except ValueError as error:
        return [replace(line, reason="MALFORMED_JSON", detail=f"line {line.number}: {error}")]
    entries = bundle.get("entry")
    if bundle.get("type") != "transaction" or not isinstance(entries, list) or not entries:
        return [_not_a_bundle(line, f"a Bundle of type {bundle.get('type')} or without entries")]
    instant = bundle_instant(bundle)
    rows = [
        _delete_entry(k + 1, item, "transaction", known, instant)
        if _delete_request(item) is not None
        else _NdjsonLine(
            line.number, _json_text(item), None, None, None, "BULK_DELETED_NOT_A_DELETE",
            f"entry {k}: a deleted file lists DELETE requests only; not applied",
        )
        for k, item in enumerate(entries)
    ]  # fmt: skip
    return [replace(row, detail=f"line {line.number}, {row.detail}") if row.reason else row for row in rows]


def _not_a_bundle(line: _NdjsonLine, found: str) -> _NdjsonLine:
    detail = f"line {line.number}: {found}, where a deleted file holds transaction Bundles of DELETEs"
    return replace(
        line,
        entity=None,
        resource_type=None,
        resource_id=None,
        reason="BULK_DELETED_NOT_A_BUNDLE",
        detail=detail,
    )
