"""The raw row of a FHIR resource, whether it came from an NDJSON line or a Bundle entry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rwe_assets.lib.raw_ingest.model import PROVENANCE_COLUMNS, PROVENANCE_FIELDS, Provenance

BUNDLE_TYPES = ("transaction", "batch", "collection", "searchset")

_NDJSON_SCHEMA = [
    ("resource_type", pa.string()),
    ("resource_id", pa.string()),
    ("resource_json", pa.string()),
]
# The raw table of every FHIR entity, whether its rows came from NDJSON lines or Bundle entries.
_NDJSON_RAW_SCHEMA = pa.schema([pa.field(n, t) for n, t in _NDJSON_SCHEMA] + PROVENANCE_FIELDS)


@dataclass
class _NdjsonLine:
    number: int
    text: str | None
    entity: str | None
    resource_type: str | None
    resource_id: str | None
    reason: str | None = None
    detail: str | None = None

    def quarantine_row(self) -> tuple:
        """(line, reason, field, detail, text): a quarantined line as the quarantine writer takes it."""
        return (self.number, self.reason, None, self.detail, self.text)


def _ndjson_batch(lines: list[_NdjsonLine], provenance: Provenance) -> pa.RecordBatch:
    numbers = np.fromiter((line.number for line in lines), dtype=np.int64, count=len(lines))
    arrays = [
        pa.array([line.resource_type for line in lines], pa.string()),
        pa.array([line.resource_id for line in lines], pa.string()),
        pa.array([line.text for line in lines], pa.string()),
    ] + [array for _, array in provenance.columns(numbers)]
    names = [name for name, _ in _NDJSON_SCHEMA] + list(PROVENANCE_COLUMNS)
    return pa.RecordBatch.from_arrays(arrays, names=names)
