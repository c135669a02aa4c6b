"""The raw quarantine: rows that could not be read, with a reason code and the line they came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest.model import QUARANTINE, QUARANTINE_SCHEMA, Provenance


def _quarantine_table(source: str, entity: str | None, rows: list[tuple], provenance: Provenance) -> pa.Table:
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
