"""Staging for genomics: raw/<lab>/variant_call -> staging/variant, raw/<lab>/sample_manifest ->
staging/specimen, failures -> staging/variant_quarantine and staging/specimen_quarantine.

Rebuilt from the current raw tables on each run (only files the ingest manifest lists as ingested).
Per call: the ALT allele split out of its record (REF/ALT, AD and Number=A INFO values of that
allele), normalized (normalize.py), zygosity and phase from GT, FILTER recorded (filter_pass; failed
calls are staged, not dropped), annotation from INFO (annotations.py). Work per site or per genotype
spelling happens once in Python; the per-call join runs in DuckDB.

Quarantine reasons (field in brackets; details never quote a value):
  variant:  SAMPLE_NOT_IN_MANIFEST [sample_id], UNKNOWN_CONTIG [CHROM] (the header declares contigs
            and not this one), BUILD_MISMATCH [GENOME_BUILD] (header build differs from the sample's
            manifest build; a header that names no build is taken to agree).
  specimen: DUPLICATE_SAMPLE_ID [SAMPLE_ID] (an older manifest row of the same sample),
            INVALID_DATE [SPECIMEN_DATE], SAMPLE_NOT_IN_VCF [SAMPLE_ID] (its VCF_FILE was ingested and
            has no such sample column).
Reconciliation (checked, ReconciliationError otherwise): per raw file, calls = staged + quarantined;
manifest rows = specimens + quarantined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import write_deltalake

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import annotations, normalize
from rwe_assets.lib.genomics.header import VcfHeader, parse_header
from rwe_assets.lib.raw_ingest import VCF_HEADER, Status, read_manifest

CALL_ENTITY, MANIFEST_ENTITY = "variant_call", "sample_manifest"
VARIANT, SPECIMEN = "variant", "specimen"
VARIANT_QUARANTINE, SPECIMEN_QUARANTINE = "variant_quarantine", "specimen_quarantine"

_SITE_SCHEMA = pa.schema(
    [
        ("_file_sha256", pa.string()),
        ("record_number", pa.int64()),
        ("alt_index", pa.int16()),
        ("vcf_ref", pa.string()),
        ("vcf_alt", pa.string()),
        ("n_alt_alleles", pa.int16()),
        ("norm_pos", pa.int64()),
        ("norm_ref", pa.string()),
        ("norm_alt", pa.string()),
        ("variant_type", pa.string()),
        ("allele_frequency", pa.float64()),
        ("annotation_source", pa.string()),
        ("gene_symbol", pa.string()),
        ("transcript", pa.string()),
        ("hgvs_c", pa.string()),
        ("hgvs_p", pa.string()),
        ("consequence", pa.string()),
        ("clinical_significance", pa.string()),
    ]
)
_GENOTYPE_SCHEMA = pa.schema(
    [("genotype", pa.string()), ("alt_index", pa.int16()), ("zygosity", pa.string()), ("phased", pa.bool_())]
)
_FILE_SCHEMA = pa.schema(
    [("_file_sha256", pa.string()), ("vcf_build", pa.string()), ("declares_contigs", pa.bool_())]
)


@dataclass(frozen=True)
class StagingReport:
    variants: int
    variants_quarantined: int
    specimens: int
    specimens_quarantined: int
    quarantine_reasons: dict[str, int]


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
    lake_dir = Path(lake_dir)
    con = duckdb.connect()
    try:
        files = _register_raw(con, lake_dir, source)
        headers = _headers(con, files)
        con.register("file_info", _file_info(headers))
        con.register("vcf_contig", _contigs(headers))
        con.register("vcf_sample", _samples(headers))
        con.register("site", _sites(con, headers))
        con.register("genotype_kind", _genotypes(con))
        _stage_specimens(con)
        _stage_variants(con)
        report = _report(con)
        for name in (VARIANT, VARIANT_QUARANTINE, SPECIMEN, SPECIMEN_QUARANTINE):
            _write(lake_dir, name, con.sql(f"SELECT * FROM {name}_out").to_arrow_table())
        _check_reconciliation(con)
        return report
    finally:
        con.close()


# --------------------------------------------------------------------------- inputs


def _register_raw(con, lake_dir: Path, source: str) -> list[str]:
    """Views raw_calls, raw_header, raw_manifest over the ingested files of `source`."""
    manifest = read_manifest(lake_dir, source).to_pylist()
    ingested = sorted({r["file_sha256"] for r in manifest if r["status"] == Status.INGESTED})
    con.execute("CREATE TEMP TABLE ingested_file (sha VARCHAR)")
    con.executemany("INSERT INTO ingested_file VALUES (?)", [(sha,) for sha in ingested])
    for view, entity in (
        ("raw_calls", CALL_ENTITY),
        ("raw_header", VCF_HEADER),
        ("raw_manifest", MANIFEST_ENTITY),
    ):
        if lake.register_view(con, f"{view}_all", lake.table_path(lake_dir, "raw", source, entity)):
            con.execute(
                f"CREATE TEMP VIEW {view} AS SELECT * FROM {view}_all WHERE _file_sha256 IN (SELECT sha FROM ingested_file)"
            )
        else:
            raise ReconciliationError(f"raw/{source}/{entity} does not exist: ingest a lab batch first")
    return [row[0] for row in con.execute("SELECT DISTINCT _file_sha256 FROM raw_header").fetchall()]


def _headers(con, files: list[str]) -> dict[str, tuple[VcfHeader, str | None]]:
    """Per VCF (sha256): its parsed header (from the stored header lines) and the build it tells."""
    rows = con.execute(
        "SELECT _file_sha256, _line_number, section, text, item_id, genome_build FROM raw_header "
        "WHERE section NOT IN ('sample', 'count') ORDER BY _file_sha256, _line_number"
    ).fetchall()
    samples = con.execute(
        "SELECT _file_sha256, item_id FROM raw_header WHERE section = 'sample' ORDER BY _file_sha256, CAST(number AS INTEGER)"
    ).fetchall()
    lines: dict[str, list[str]] = {sha: [] for sha in files}
    builds: dict[str, str | None] = {}
    for sha, _line, _section, text, _item, build in rows:
        lines[sha].append(text)
        builds[sha] = build
    names: dict[str, list[str]] = {sha: [] for sha in files}
    for sha, name in samples:
        names[sha].append(name)
    result = {}
    for sha in files:
        chrom_line = "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names[sha]]
        )
        result[sha] = (parse_header("\n".join([*lines[sha], chrom_line]) + "\n"), builds.get(sha))
    return result


def _file_info(headers) -> pa.Table:
    rows = [(sha, build, bool(header.contigs)) for sha, (header, build) in headers.items()]
    return pa.Table.from_pylist(
        [dict(zip(_FILE_SCHEMA.names, r, strict=True)) for r in rows], schema=_FILE_SCHEMA
    )


def _contigs(headers) -> pa.Table:
    rows = [
        {"_file_sha256": sha, "contig": name}
        for sha, (header, _) in headers.items()
        for name in header.contigs
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("_file_sha256", pa.string()), ("contig", pa.string())])
    )


def _samples(headers) -> pa.Table:
    rows = [
        {"_file_sha256": sha, "sample_id": s} for sha, (header, _) in headers.items() for s in header.samples
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("_file_sha256", pa.string()), ("sample_id", pa.string())])
    )


# --------------------------------------------------------------------------- per site, per genotype


def _sites(con, headers) -> pa.Table:
    """One row per (file, record, ALT allele) called: the split, normalized, annotated allele."""
    rows = con.execute(
        "SELECT DISTINCT _file_sha256, record_number, alt_index, pos, ref, alt, info FROM raw_calls"
    ).fetchall()
    out = []
    for sha, record, alt_index, pos, ref, alt_text, info_text in rows:
        alts = alt_text.split(",")
        alt = alts[alt_index - 1]
        info = json.loads(info_text) if info_text else {}
        norm_pos, norm_ref, norm_alt = normalize.normalize(pos, ref, alt)
        note = annotations.annotate(info, ref, alt, alt_index, headers[sha][0].vep_fields)
        frequency = annotations.per_allele(info.get("AF"), alt_index)
        out.append(
            (sha, record, alt_index, ref, alt, len(alts), norm_pos, norm_ref, norm_alt,
             normalize.variant_type(norm_ref, norm_alt),
             round(float(frequency), 7) if isinstance(frequency, int | float) else None,
             note.source, note.gene_symbol, note.transcript, note.hgvs_c, note.hgvs_p, note.consequence,
             note.clinical_significance)
        )  # fmt: skip
    return pa.Table.from_pylist(
        [dict(zip(_SITE_SCHEMA.names, r, strict=True)) for r in out], schema=_SITE_SCHEMA
    )


def _genotypes(con) -> pa.Table:
    rows = con.execute("SELECT DISTINCT genotype, alt_index FROM raw_calls").fetchall()
    out = [
        {"genotype": gt, "alt_index": k, "zygosity": normalize.zygosity(gt, k), "phased": "|" in gt}
        for gt, k in rows
    ]
    return pa.Table.from_pylist(out, schema=_GENOTYPE_SCHEMA)


# --------------------------------------------------------------------------- specimens and variants


_OPTIONAL_MANIFEST_COLUMNS = ("VCF_FILE", "ORDERING_SITE")


def _stage_specimens(con) -> None:
    present = set(con.sql("SELECT * FROM raw_manifest LIMIT 0").columns)
    optional = ", ".join(
        f"{'m.' + name if name in present else 'NULL::VARCHAR'} AS opt_{name.lower()}"
        for name in _OPTIONAL_MANIFEST_COLUMNS
    )
    con.execute(
        f"""
        CREATE TEMP TABLE specimen_rows AS
        SELECT m.*, {optional},
               row_number() OVER (PARTITION BY m.SAMPLE_ID
                                  ORDER BY m._ingested_at DESC, m._batch_id DESC, m._line_number DESC) AS copy_rank,
               try_strptime(m.SPECIMEN_DATE, '%Y-%m-%d')::DATE AS specimen_date_parsed,
               EXISTS (SELECT 1 FROM raw_header h WHERE h.section = 'sample' AND h.item_id = m.SAMPLE_ID) AS in_vcf,
               EXISTS (SELECT 1 FROM raw_header h WHERE opt_vcf_file <> ''
                       AND h._source_file LIKE '%/' || opt_vcf_file) AS vcf_ingested
        FROM raw_manifest m
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE specimen_checked AS
        SELECT *, CASE
            WHEN copy_rank > 1 THEN 'DUPLICATE_SAMPLE_ID'
            WHEN specimen_date_parsed IS NULL THEN 'INVALID_DATE'
            WHEN vcf_ingested AND NOT in_vcf THEN 'SAMPLE_NOT_IN_VCF'
        END AS reason_code
        FROM specimen_rows
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW specimen_out AS
        SELECT 'lab|' || SAMPLE_ID AS specimen_key, 'lab' AS source_system, SAMPLE_ID AS sample_id,
               SOURCE_PERSON_ID AS source_person_id, SPECIMEN_TYPE AS specimen_type,
               specimen_date_parsed AS specimen_date, TEST_NAME AS test_name, GENOME_BUILD AS genome_build,
               opt_vcf_file AS vcf_file, opt_ordering_site AS ordering_site, in_vcf AS has_variant_calls,
               _batch_id, _source_file, _file_sha256, _line_number
        FROM specimen_checked WHERE reason_code IS NULL
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW specimen_quarantine_out AS
        SELECT reason_code,
               CASE reason_code WHEN 'INVALID_DATE' THEN 'SPECIMEN_DATE' ELSE 'SAMPLE_ID' END AS field,
               CASE reason_code
                   WHEN 'DUPLICATE_SAMPLE_ID' THEN 'a later manifest row has the same sample id'
                   WHEN 'INVALID_DATE' THEN 'expected a date YYYY-MM-DD'
                   ELSE 'the VCF named in VCF_FILE has no column for this sample'
               END AS detail,
               SAMPLE_ID AS sample_id, _batch_id, _source_file, _file_sha256, _line_number
        FROM specimen_checked WHERE reason_code IS NOT NULL
        """
    )


def _stage_variants(con) -> None:
    con.execute(
        """
        CREATE TEMP TABLE call_checked AS
        SELECT c.*, s.* EXCLUDE (_file_sha256, record_number, alt_index), g.zygosity, g.phased,
               sp.source_person_id, sp.specimen_key, sp.genome_build AS manifest_build, f.vcf_build,
               CASE
                   WHEN sp.sample_id IS NULL THEN 'SAMPLE_NOT_IN_MANIFEST'
                   WHEN f.declares_contigs AND vc.contig IS NULL THEN 'UNKNOWN_CONTIG'
                   WHEN f.vcf_build IS NOT NULL AND sp.genome_build <> ''
                        AND upper(f.vcf_build) <> upper(sp.genome_build) THEN 'BUILD_MISMATCH'
               END AS reason_code
        FROM raw_calls c
        JOIN site s USING (_file_sha256, record_number, alt_index)
        JOIN genotype_kind g USING (genotype, alt_index)
        JOIN file_info f USING (_file_sha256)
        LEFT JOIN specimen_out sp ON sp.sample_id = c.sample_id
        LEFT JOIN vcf_contig vc ON vc._file_sha256 = c._file_sha256 AND vc.contig = c.chrom
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW variant_out AS
        SELECT _file_sha256 || ':' || record_number || ':' || sample_index || ':' || alt_index AS call_key,
               specimen_key, sample_id, source_person_id, chrom, norm_pos AS pos, norm_ref AS ref, norm_alt AS alt,
               pos AS vcf_pos, vcf_ref, vcf_alt, alt_index, n_alt_alleles, variant_type,
               CASE WHEN id = '.' THEN NULL ELSE id END AS rs_id, qual, filter, filter = 'PASS' AS filter_pass,
               genotype, zygosity, phased, depth AS read_depth,
               allele_depths[alt_index + 1] AS alt_read_depth, allele_depths[1] AS ref_read_depth,
               genotype_quality, allele_frequency, annotation_source, gene_symbol, transcript, hgvs_c, hgvs_p,
               consequence, clinical_significance, vcf_build AS genome_build,
               record_number, sample_index, _batch_id, _source_file, _file_sha256, _line_number
        FROM call_checked WHERE reason_code IS NULL
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW variant_quarantine_out AS
        SELECT reason_code,
               CASE reason_code WHEN 'SAMPLE_NOT_IN_MANIFEST' THEN 'sample_id'
                                WHEN 'UNKNOWN_CONTIG' THEN 'CHROM' ELSE 'GENOME_BUILD' END AS field,
               CASE reason_code
                   WHEN 'SAMPLE_NOT_IN_MANIFEST' THEN 'the sample column is not in any staged manifest row'
                   WHEN 'UNKNOWN_CONTIG' THEN 'CHROM is not among the header''s ##contig lines'
                   ELSE 'the VCF header''s genome build differs from the manifest''s GENOME_BUILD'
               END AS detail,
               sample_id, record_number, sample_index, alt_index,
               _batch_id, _source_file, _file_sha256, _line_number
        FROM call_checked WHERE reason_code IS NOT NULL
        """
    )


# --------------------------------------------------------------------------- outputs and checks


def _report(con) -> StagingReport:
    count = lambda view: con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]  # noqa: E731
    reasons = dict(
        con.execute(
            "SELECT reason_code, count(*) FROM (SELECT reason_code FROM variant_quarantine_out "
            "UNION ALL SELECT reason_code FROM specimen_quarantine_out) GROUP BY reason_code ORDER BY 1"
        ).fetchall()
    )
    return StagingReport(
        count("variant_out"), count("variant_quarantine_out"), count("specimen_out"),
        count("specimen_quarantine_out"), reasons,
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
    write_deltalake(
        str(lake.table_path(lake_dir, "staging", name)), table, mode="overwrite", schema_mode="overwrite"
    )


def reconcile(lake_dir: Path, source: str = "lab") -> list[tuple[str, int, int, int]]:
    """(raw file, raw calls, staged, quarantined) per VCF, recounted from the Delta tables."""
    con = duckdb.connect()
    try:
        _register_raw(con, Path(lake_dir), source)
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
