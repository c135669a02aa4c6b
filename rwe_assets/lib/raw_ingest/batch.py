"""One batch, file by file: refuse what leaves the landing zone, skip what the manifest has seen, read
the rest by format, then record the outcome in the manifest and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rwe_assets.errors import InputFileError
from rwe_assets.lib.governance import audit, permissions
from rwe_assets.lib.raw_ingest.bulk_export import BatchManifests, ingest_deleted_list
from rwe_assets.lib.raw_ingest.csv_files import _ingest_csv
from rwe_assets.lib.raw_ingest.fhir_json import _ingest_fhir_json, is_json_document
from rwe_assets.lib.raw_ingest.manifest import _ManifestView
from rwe_assets.lib.raw_ingest.model import BatchReport, FileResult, Provenance, Status, package
from rwe_assets.lib.raw_ingest.ndjson import _ingest_ndjson
from rwe_assets.lib.raw_ingest.scan import EMPTY_FILE, batch_files, file_digest, hash_file, scan_file
from rwe_assets.lib.raw_ingest.vcf import _ingest_vcf, is_vcf
from rwe_assets.lib.sources import SourceSpec


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
    bulk = BatchManifests(batch_path)  # the deleted files a FHIR bulk export's manifest names
    results = []
    permissions.ensure_private_dir(lake_dir)  # raw rows hold PII: owner-only (governance/permissions)
    with permissions.private_umask():
        for path in batch_files(batch_path):
            relative = path.relative_to(landing_dir).as_posix()
            result = _ingest_one(lake_dir, source, batch_id, path, relative, manifest, ingested_at, bulk)
            if result is None:  # already recorded by an earlier run of this batch
                continue
            package()._append_manifest(lake_dir, source.name, batch_id, result, run_id, ingested_at)
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


def _ingest_one(lake_dir, source, batch_id, path, relative, manifest, ingested_at, bulk) -> FileResult | None:
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
        scan = _scan(path, relative, source)
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
        if _lines_by_reader(path, source):  # not read: its lines counted here
            result.lines_read = scan_file(path, relative).lines
        return result
    result.file_version, result.supersedes_sha256 = manifest.next_version(batch_id, relative)
    provenance = Provenance(batch_id, relative, scan.sha256, ingested_at)
    try:
        if is_vcf(path.name):
            _ingest_vcf(lake_dir, source, path, provenance, result)
        elif source.format == "csv":
            _ingest_csv(lake_dir, source, path, scan, provenance, result)
        elif is_json_document(path.name):
            _ingest_fhir_json(lake_dir, source, path, provenance, result)
        elif bulk.is_deleted_list(path):
            ingest_deleted_list(lake_dir, source, path, provenance, result)
        else:
            _ingest_ndjson(lake_dir, source, path, provenance, result)
    except InputFileError as error:
        result.status, result.error = Status.FAILED, str(error)
        result.rows_stored, result.records_read, result.rows_quarantined = {}, 0, 0
    return result


def _scan(path: Path, relative: str, source: SourceSpec):
    """The file's identity, and its lines where no reader counts them: the VCF and NDJSON readers count
    every line as they read it, so a second pass over the content would only repeat that."""
    if is_vcf(path.name):
        return hash_file(path, relative)
    if _lines_by_reader(path, source):
        return hash_file(path, relative, EMPTY_FILE)
    return scan_file(path, relative)


def _lines_by_reader(path: Path, source: SourceSpec) -> bool:
    return source.format == "ndjson" and not is_json_document(path.name) and not is_vcf(path.name)


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
