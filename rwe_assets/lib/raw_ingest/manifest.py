"""The ingest manifest (one row per landed file and outcome) and the recount of a file's rows against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest.model import MANIFEST, MANIFEST_SCHEMA, QUARANTINE, FileResult, Status
from rwe_assets.lib.sources import SourceSpec


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
