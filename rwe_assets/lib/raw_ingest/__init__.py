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

The package, by job: model (schemas, limits, outcomes), scan (a batch's files, one pass over a file's
bytes), batch (ingest_batch: one file after the other), csv_files, ndjson (blocks of lines through
DuckDB) and ndjson_lines (the per-line reading), fhir_json (Bundles), fhir_rows (the FHIR raw row),
vcf, quarantine, manifest (the manifest and the recount of a file's rows). Limits and hooks are read
from this package at call time (model.package), so setting e.g. MAX_LINE_BYTES here reaches them all.
"""

from rwe_assets.lib.raw_ingest.batch import ingest_batch
from rwe_assets.lib.raw_ingest.csv_files import check_header, line_numbers, read_header
from rwe_assets.lib.raw_ingest.fhir_json import MAX_JSON_DOCUMENT_BYTES, is_json_document
from rwe_assets.lib.raw_ingest.fhir_rows import BUNDLE_TYPES
from rwe_assets.lib.raw_ingest.manifest import (
    FileReconciliation,
    _append_manifest,
    read_manifest,
    reconcile_files,
)
from rwe_assets.lib.raw_ingest.model import (
    CSV_BATCH_ROWS,
    CSV_MEMORY_LIMIT,
    MANIFEST,
    MANIFEST_SCHEMA,
    MAX_LINE_BYTES,
    NDJSON_BATCH_ROWS,
    PROVENANCE_COLUMNS,
    PROVENANCE_FIELDS,
    QUARANTINE,
    QUARANTINE_SCHEMA,
    TIMESTAMP_UTC,
    VCF_HEADER,
    BatchReport,
    FileResult,
    FileScan,
    Provenance,
    Status,
)
from rwe_assets.lib.raw_ingest.quarantine import _quarantine_table, _write_quarantine
from rwe_assets.lib.raw_ingest.scan import (
    _bounded_lines,
    _LineCounter,
    batch_files,
    file_digest,
    hash_file,
    open_decompressed,
    scan_file,
)
from rwe_assets.lib.raw_ingest.vcf import VCF_CALL_SCHEMA, VCF_HEADER_SCHEMA, is_vcf, vcf_header_table

_Provenance = Provenance  # the name before the split

__all__ = [
    "BUNDLE_TYPES",
    "CSV_BATCH_ROWS",
    "CSV_MEMORY_LIMIT",
    "MANIFEST",
    "MANIFEST_SCHEMA",
    "MAX_JSON_DOCUMENT_BYTES",
    "MAX_LINE_BYTES",
    "NDJSON_BATCH_ROWS",
    "PROVENANCE_COLUMNS",
    "PROVENANCE_FIELDS",
    "QUARANTINE",
    "QUARANTINE_SCHEMA",
    "TIMESTAMP_UTC",
    "VCF_CALL_SCHEMA",
    "VCF_HEADER",
    "VCF_HEADER_SCHEMA",
    "BatchReport",
    "FileReconciliation",
    "FileResult",
    "FileScan",
    "Provenance",
    "Status",
    "_LineCounter",
    "_Provenance",
    "_append_manifest",
    "_bounded_lines",
    "_quarantine_table",
    "_write_quarantine",
    "batch_files",
    "check_header",
    "file_digest",
    "hash_file",
    "ingest_batch",
    "is_json_document",
    "is_vcf",
    "line_numbers",
    "open_decompressed",
    "read_header",
    "read_manifest",
    "reconcile_files",
    "scan_file",
    "vcf_header_table",
]
