"""Staging for genomics: raw/<lab>/variant_call -> staging/variant, raw/<lab>/sample_manifest ->
staging/specimen, failures -> staging/variant_quarantine and staging/specimen_quarantine.

Rebuilt from the current raw tables on each run (only files the ingest manifest lists as ingested).
Per call: the ALT allele split out of its record (REF/ALT, AD and Number=A INFO values of that
allele), normalized (normalize.py), zygosity and phase from GT, FILTER recorded (filter_pass; failed
calls are staged, not dropped), annotation from INFO (annotations.py). Work per site or per genotype
spelling happens once in Python; the per-call join runs in DuckDB.

Sample identity: (batch, VCF_FILE, SAMPLE_ID) -> specimen -> person. A manifest row's VCF_FILE is a
path relative to the batch folder (`run.vcf`, `sub/run.vcf`), matched exactly against the ingested
VCFs' paths in the row's own batch, else in the latest batch ingested before it (a manifest-only batch
correcting an earlier file's sample). specimen_key = 'lab|' + the VCF's batch + '|' + VCF_FILE + '|' +
SAMPLE_ID; without VCF_FILE (column absent or empty) the scope is the row's batch: 'lab|' + batch +
'||' + SAMPLE_ID, covering that name in every VCF of the batch unless a row names the VCF. The latest
manifest row of a key wins (a later batch corrects the person); a reused sample name in another file
or batch is another specimen. A manifest file re-sent byte for byte in a later batch (ingest: `duplicate`)
counts as that batch's rows too (staging_inputs.register_raw), so it covers the batch's new VCF.
Genome build: the VCF header's (header.py), else the manifest's GENOME_BUILD, normalized with
header.normalize_build (a spelling it does not know is kept as written, trimmed); both present and
different: BUILD_MISMATCH.

Quarantine reasons (field in brackets; details never quote a value):
  variant:  SAMPLE_PERSON_CONFLICT [sample_id] (the manifest gives the sample of this VCF two persons),
            SAMPLE_NOT_IN_MANIFEST [sample_id], UNKNOWN_CONTIG [CHROM] (the header declares contigs
            and not this one), BUILD_MISMATCH [GENOME_BUILD] (header build differs from the sample's
            manifest build; a header or manifest that names no build is taken to agree).
  specimen: DUPLICATE_SAMPLE_ID [SAMPLE_ID] (a later manifest row of the same specimen key),
            SAMPLE_PERSON_CONFLICT [SOURCE_PERSON_ID] (rows of one batch give one specimen key two
            persons: every such row, the detail naming the VCF), INVALID_DATE [SPECIMEN_DATE],
            SAMPLE_NOT_IN_VCF [SAMPLE_ID] (the VCF its VCF_FILE names was ingested and has no such
            sample column).
Reconciliation (checked, ReconciliationError otherwise): per raw file, calls = staged + quarantined;
manifest rows = specimens + quarantined.

The inputs are prepared by ``staging_inputs``, the specimen and variant statements are in
``staging_tables``; this module runs them, writes the four tables and checks the reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import annotations
from rwe_assets.lib.genomics.staging_inputs import (
    CALL_ENTITY,
    MANIFEST_ENTITY,
    contig_table,
    file_info_table,
    genotype_kind_table,
    haploid_call_table,
    read_headers,
    register_raw,
    sample_table,
    site_table,
)
from rwe_assets.lib.genomics.staging_tables import (
    SOURCE_SYSTEM,
    refuse_erased,
    stage_specimens,
    stage_variants,
    vcf_files,
)
from rwe_assets.lib.raw_ingest import read_manifest

# the names other modules use as genomics.staging.<name>
__all__ = [
    "CALL_ENTITY",
    "MANIFEST_ENTITY",
    "SOURCE_SYSTEM",
    "SPECIMEN",
    "SPECIMEN_QUARANTINE",
    "VARIANT",
    "VARIANT_QUARANTINE",
    "StagingReport",
    "genomics_sources",
    "reconcile",
    "stage_genomics",
    "stage_genomics_sources",
]

VARIANT, SPECIMEN = "variant", "specimen"
VARIANT_QUARANTINE, SPECIMEN_QUARANTINE = "variant_quarantine", "specimen_quarantine"


@dataclass(frozen=True)
class StagingReport:
    variants: int
    variants_quarantined: int
    specimens: int
    specimens_quarantined: int
    quarantine_reasons: dict[str, int]
    # calls whose annotation could not be placed, per warning (annotations.Annotation.warning)
    annotation_warnings: dict[str, int] = field(default_factory=dict)
    # per VCF (its source file), the INFO annotation formats it carries that are not read
    unread_annotation_formats: dict[str, list[str]] = field(default_factory=dict)


def genomics_sources(registry) -> list[str]:
    """Names of the registry's genomics sources (the ones stage_genomics reads)."""
    return [source.name for source in registry if source.kind == "genomics"]


def stage_genomics_sources(lake_dir: Path, registry) -> dict[str, StagingReport | None]:
    """stage_genomics for every genomics source of the registry; None for one with nothing ingested
    yet (its staging tables appear with its first batch)."""
    return {
        name: stage_genomics(lake_dir, name) if read_manifest(lake_dir, name).num_rows else None
        for name in genomics_sources(registry)
    }


def stage_genomics(lake_dir: Path, source: str = "lab") -> StagingReport:
    """Build the four staging tables from the raw tables of `source`; returns the counts."""
    con = duckdb.connect()
    try:
        files = register_raw(con, lake_dir, source)
        headers = read_headers(con, files)
        con.register("file_info", file_info_table(headers))
        con.register("vcf_contig", contig_table(headers))
        con.register("vcf_sample", sample_table(headers))
        con.register("site", site_table(con, headers))
        con.register("genotype_kind", genotype_kind_table(con))
        con.register("haploid_call", haploid_call_table(con))
        vcf_files(con, source)
        refuse_erased(con, lake_dir)
        stage_specimens(con)
        stage_variants(con)
        report = _report(con, headers)
        for name in (VARIANT, VARIANT_QUARANTINE, SPECIMEN, SPECIMEN_QUARANTINE):
            _write(lake_dir, name, con.sql(f"SELECT * FROM {name}_out").to_arrow_table())
        _check_reconciliation(con)
        return report
    finally:
        con.close()


# --------------------------------------------------------------------------- outputs and checks


def _report(con, headers) -> StagingReport:
    count = lambda view: con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]  # noqa: E731
    reasons = dict(
        con.execute(
            "SELECT reason_code, count(*) FROM (SELECT reason_code FROM variant_quarantine_out "
            "UNION ALL SELECT reason_code FROM specimen_quarantine_out) GROUP BY reason_code ORDER BY 1"
        ).fetchall()
    )
    warnings = dict(
        con.execute(
            "SELECT annotation_warning, count(*) FROM raw_calls c JOIN site s USING (_file_sha256, record_number, alt_index) "
            "WHERE annotation_warning IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    files = dict(con.execute("SELECT _file_sha256, source_file FROM vcf_file").fetchall())
    unread = {files.get(sha, sha): formats for sha, (header, _) in headers.items()
              if (formats := annotations.unparsed_formats(header))}  # fmt: skip
    return StagingReport(
        count("variant_out"), count("variant_quarantine_out"), count("specimen_out"),
        count("specimen_quarantine_out"), reasons, warnings, unread,
    )  # fmt: skip


def _check_reconciliation(con) -> None:
    """raw calls = staged + quarantined per file; manifest rows = specimens + quarantined."""
    broken = con.execute(
        """
        SELECT r._source_file, r.n, coalesce(v.n, 0) + coalesce(q.n, 0)
        FROM (SELECT _file_sha256, any_value(_source_file) AS _source_file, count(*) AS n FROM raw_calls GROUP BY 1) r
        LEFT JOIN (SELECT _file_sha256, count(*) AS n FROM variant_out GROUP BY 1) v USING (_file_sha256)
        LEFT JOIN (SELECT _file_sha256, count(*) AS n FROM variant_quarantine_out GROUP BY 1) q USING (_file_sha256)
        WHERE r.n <> coalesce(v.n, 0) + coalesce(q.n, 0)
        UNION ALL
        SELECT 'sample manifests', (SELECT count(*) FROM raw_manifest),
               (SELECT count(*) FROM specimen_out) + (SELECT count(*) FROM specimen_quarantine_out)
        WHERE (SELECT count(*) FROM raw_manifest) <>
              (SELECT count(*) FROM specimen_out) + (SELECT count(*) FROM specimen_quarantine_out)
        """
    ).fetchall()
    if broken:
        detail = "; ".join(f"{name}: raw {raw}, staged + quarantined {out}" for name, raw, out in broken)
        raise ReconciliationError(f"genomics staging does not reconcile: {detail}")


def _write(lake_dir: Path, name: str, table: pa.Table) -> None:
    lake.write(lake.table_path(lake_dir, "staging", name), table, mode="overwrite", schema_mode="overwrite")


def reconcile(lake_dir: Path, source: str = "lab") -> list[tuple[str, int, int, int]]:
    """(raw file, raw calls, staged, quarantined) per VCF, recounted from the Delta tables."""
    con = duckdb.connect()
    try:
        register_raw(con, lake_dir, source)
        for name in (VARIANT, VARIANT_QUARANTINE):
            lake.register_view(con, name, lake.table_path(lake_dir, "staging", name))
        return con.execute(
            f"""
            SELECT r.f, r.n, coalesce(v.n, 0), coalesce(q.n, 0)
            FROM (SELECT _file_sha256, any_value(_source_file) AS f, count(*) AS n FROM raw_calls GROUP BY 1) r
            LEFT JOIN (SELECT _file_sha256, count(*) AS n FROM {VARIANT} GROUP BY 1) v USING (_file_sha256)
            LEFT JOIN (SELECT _file_sha256, count(*) AS n FROM {VARIANT_QUARANTINE} GROUP BY 1) q USING (_file_sha256)
            ORDER BY r.f
            """
        ).fetchall()
    finally:
        con.close()
