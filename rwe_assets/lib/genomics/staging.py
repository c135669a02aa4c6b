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
or batch is another specimen.
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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import annotations, normalize
from rwe_assets.lib.genomics.header import VcfHeader, normalize_build, parse_header
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.raw_ingest import VCF_HEADER, Status, read_manifest

CALL_ENTITY, MANIFEST_ENTITY = "variant_call", "sample_manifest"
VARIANT, SPECIMEN = "variant", "specimen"
SOURCE_SYSTEM = "lab"  # the source system of a sample manifest's SOURCE_PERSON_ID (the linkage crosswalk's)
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
        ("annotation_warning", pa.string()),
    ]
)
_GENOTYPE_SCHEMA = pa.schema(
    [("genotype", pa.string()), ("alt_index", pa.int16()), ("zygosity", pa.string()), ("phased", pa.bool_())]
)
_HAPLOID_SCHEMA = pa.schema(
    [("genotype", pa.string()), ("alt_index", pa.int16()), ("chrom", pa.string()), ("pos", pa.int64()),
     ("vcf_build", pa.string()), ("zygosity", pa.string())]
)  # fmt: skip
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
        files = _register_raw(con, lake_dir, source)
        headers = _headers(con, files)
        con.register("file_info", _file_info(headers))
        con.register("vcf_contig", _contigs(headers))
        con.register("vcf_sample", _samples(headers))
        con.register("site", _sites(con, headers))
        con.register("genotype_kind", _genotypes(con))
        con.register("haploid_call", _haploid_calls(con))
        _vcf_files(con, source)
        _refuse_erased(con, lake_dir)
        _stage_specimens(con)
        _stage_variants(con)
        report = _report(con, headers)
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
        header = headers[sha][0]
        note = annotations.annotate(
            info, ref, alt, alt_index, header.vep_fields, eff_fields=header.eff_fields, n_alts=len(alts)
        )
        frequency = annotations.per_allele(info.get("AF"), alt_index)
        out.append(
            (sha, record, alt_index, ref, alt, len(alts), norm_pos, norm_ref, norm_alt,
             normalize.variant_type(norm_ref, norm_alt),
             round(float(frequency), 7) if isinstance(frequency, int | float) else None,
             note.source, note.gene_symbol, note.transcript, note.hgvs_c, note.hgvs_p, note.consequence,
             note.clinical_significance, note.warning)
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


def _haploid_calls(con) -> pa.Table:
    """A one-allele genotype's zygosity depends on where it is (hemizygous on chrM and on chrX/Y outside
    the pseudo-autosomal regions, else NULL: normalize.zygosity): one row per distinct (genotype, ALT,
    chromosome, position, header build) of such calls, a small share of all calls."""
    rows = con.execute(
        """
        SELECT DISTINCT c.genotype, c.alt_index, c.chrom, c.pos, f.vcf_build
        FROM raw_calls c JOIN file_info f USING (_file_sha256)
        WHERE NOT regexp_matches(c.genotype, '[/|]')
        """
    ).fetchall()
    out = [
        {"genotype": gt, "alt_index": k, "chrom": chrom, "pos": pos, "vcf_build": build,
         "zygosity": normalize.zygosity(gt, k, chrom, pos, build)}
        for gt, k, chrom, pos, build in rows
    ]  # fmt: skip
    return pa.Table.from_pylist(out, schema=_HAPLOID_SCHEMA)


# --------------------------------------------------------------------------- specimens and variants


_OPTIONAL_MANIFEST_COLUMNS = ("VCF_FILE", "ORDERING_SITE")


def _vcf_files(con, source: str) -> None:
    """vcf_file: per ingested VCF its batch, path in the batch folder (what a manifest's VCF_FILE
    names), ingestion time and header build; sample_scope is filled by _stage_specimens."""
    con.execute(
        """
        CREATE TEMP TABLE vcf_file AS
        SELECT h._file_sha256, h.batch_id, h.source_file, h.ingested_at, fi.vcf_build,
               CASE WHEN starts_with(h.source_file, $source || '/' || h.batch_id || '/')
                    THEN substr(h.source_file, length($source || '/' || h.batch_id || '/') + 1)
                    ELSE regexp_extract(h.source_file, '[^/]*$') END AS path_in_batch
        FROM (SELECT _file_sha256, any_value(_batch_id) AS batch_id, any_value(_source_file) AS source_file,
                     max(_ingested_at) AS ingested_at
              FROM raw_header GROUP BY _file_sha256) h
        JOIN file_info fi USING (_file_sha256)
        """,
        {"source": source},
    )


def _manifest_builds(con) -> pa.Table:
    """Each GENOME_BUILD spelling of the manifests -> the build (header.normalize_build, the header's
    rule), or the text as written (trimmed) when no known build is found in it; NULL when empty."""
    written = [row[0] for row in con.execute("SELECT DISTINCT GENOME_BUILD FROM raw_manifest").fetchall()]
    rows = [
        {"written": text, "build": normalize_build(text) or ((text or "").strip() or None)}
        for text in written
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([("written", pa.string()), ("build", pa.string())]))


def _refuse_erased(con, lake_dir: Path) -> None:
    """TEMP TABLE g_erased: the manifest's persons an erasure tombstone names (governance/tombstone.py).
    Their specimens and calls are quarantined as ERASED_PERSON without the sample name."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW g_records AS SELECT DISTINCT '{SOURCE_SYSTEM}' AS source_system, "
        "trim(SOURCE_PERSON_ID) AS source_person_id FROM raw_manifest"
    )
    tombstone.register_refused(con, lake_dir, "g_records", "g_erased")


def _stage_specimens(con) -> None:
    """Sample identity: (batch, VCF_FILE, SAMPLE_ID) -> specimen -> person. A row's VCF_FILE (a path in
    the batch folder) names the VCF of its own batch with that path, else the latest earlier-ingested
    one (a correction); without VCF_FILE the row covers that sample name in every VCF of its batch."""
    present = set(con.sql("SELECT * FROM raw_manifest LIMIT 0").columns)
    optional = ", ".join(
        f"{'m.' + name if name in present else 'NULL::VARCHAR'} AS opt_{name.lower()}"
        for name in _OPTIONAL_MANIFEST_COLUMNS
    )
    con.register("manifest_build", _manifest_builds(con))
    con.execute(
        f"""
        CREATE TEMP TABLE specimen_rows AS
        WITH rows AS (
            SELECT m.*, {optional}, b.build AS manifest_build,
                   try_strptime(m.SPECIMEN_DATE, '%Y-%m-%d')::DATE AS specimen_date_parsed
            FROM raw_manifest m LEFT JOIN manifest_build b ON b.written IS NOT DISTINCT FROM m.GENOME_BUILD
        ), named AS (
            SELECT *, nullif(regexp_replace(trim(coalesce(opt_vcf_file, '')), '^[.]/', ''), '') AS vcf_name FROM rows
        ), resolved AS (
            SELECT n.*, f._file_sha256 AS vcf_sha, f.batch_id AS vcf_batch, f.source_file AS vcf_source_file,
                   f.vcf_build
            FROM named n
            LEFT JOIN vcf_file f ON f.path_in_batch = n.vcf_name
                 AND (f.batch_id = n._batch_id OR f.ingested_at <= n._ingested_at)
            QUALIFY row_number() OVER (PARTITION BY n._file_sha256, n._line_number
                                       ORDER BY f.batch_id = n._batch_id DESC, f.ingested_at DESC, f.batch_id DESC) = 1
        ), keyed AS (
            SELECT r.*,
                   'lab|' || coalesce(r.vcf_batch, r._batch_id) || '|' || coalesce(r.vcf_name, '') || '|' || r.SAMPLE_ID
                       AS specimen_key,
                   CASE WHEN r.vcf_sha IS NOT NULL
                        THEN EXISTS (SELECT 1 FROM vcf_sample s
                                     WHERE s._file_sha256 = r.vcf_sha AND s.sample_id = r.SAMPLE_ID)
                        ELSE EXISTS (SELECT 1 FROM vcf_sample s JOIN vcf_file f USING (_file_sha256)
                                     WHERE r.vcf_name IS NULL AND f.batch_id = r._batch_id
                                       AND s.sample_id = r.SAMPLE_ID)
                   END AS in_vcf,
                   CASE WHEN r.vcf_name IS NULL THEN (
                        SELECT CASE WHEN count(DISTINCT f.vcf_build) = 1 THEN min(f.vcf_build) END
                        FROM vcf_sample s JOIN vcf_file f USING (_file_sha256)
                        WHERE f.batch_id = r._batch_id AND s.sample_id = r.SAMPLE_ID) END AS batch_vcf_build
            FROM resolved r
        )
        SELECT *,
               trim(SOURCE_PERSON_ID) IN (SELECT source_person_id FROM g_erased) AS erased,
               row_number() OVER latest AS copy_rank,
               first_value(_batch_id) OVER latest AS latest_batch,
               min(SOURCE_PERSON_ID) OVER same_batch IS DISTINCT FROM max(SOURCE_PERSON_ID) OVER same_batch
                   AS person_conflict
        FROM keyed
        WINDOW latest AS (PARTITION BY specimen_key ORDER BY _ingested_at DESC, _batch_id DESC, _line_number DESC),
               same_batch AS (PARTITION BY specimen_key, _batch_id)
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE specimen_checked AS
        SELECT *, CASE
            WHEN erased THEN 'ERASED_PERSON'
            WHEN _batch_id <> latest_batch THEN 'DUPLICATE_SAMPLE_ID'
            WHEN person_conflict THEN 'SAMPLE_PERSON_CONFLICT'
            WHEN copy_rank > 1 THEN 'DUPLICATE_SAMPLE_ID'
            WHEN specimen_date_parsed IS NULL THEN 'INVALID_DATE'
            WHEN vcf_sha IS NOT NULL AND NOT in_vcf THEN 'SAMPLE_NOT_IN_VCF'
        END AS reason_code
        FROM specimen_rows
        """
    )
    con.execute(
        f"""
        CREATE TEMP VIEW specimen_out AS
        SELECT specimen_key, '{SOURCE_SYSTEM}' AS source_system, SAMPLE_ID AS sample_id,
               SOURCE_PERSON_ID AS source_person_id, SPECIMEN_TYPE AS specimen_type,
               specimen_date_parsed AS specimen_date, TEST_NAME AS test_name,
               coalesce(manifest_build, vcf_build, batch_vcf_build) AS genome_build,
               opt_vcf_file AS vcf_file, vcf_source_file, opt_ordering_site AS ordering_site,
               in_vcf AS has_variant_calls, _batch_id, _source_file, _file_sha256, _line_number
        FROM specimen_checked WHERE reason_code IS NULL
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW specimen_quarantine_out AS
        SELECT reason_code,
               CASE reason_code WHEN 'INVALID_DATE' THEN 'SPECIMEN_DATE'
                                WHEN 'SAMPLE_PERSON_CONFLICT' THEN 'SOURCE_PERSON_ID'
                                WHEN 'ERASED_PERSON' THEN 'SOURCE_PERSON_ID' ELSE 'SAMPLE_ID' END AS field,
               CASE reason_code
                   WHEN 'ERASED_PERSON' THEN 'an erasure tombstone names this person (rwe erase)'
                   WHEN 'DUPLICATE_SAMPLE_ID' THEN 'a later manifest row is for the same sample of the same VCF'
                   WHEN 'SAMPLE_PERSON_CONFLICT' THEN 'another manifest row of this batch gives this sample of '
                       || CASE WHEN vcf_source_file IS NOT NULL THEN vcf_source_file
                               WHEN vcf_name IS NOT NULL THEN 'VCF_FILE ' || vcf_name || ' (not ingested)'
                               ELSE 'the batch''s VCFs (no VCF_FILE)' END
                       || ' a different SOURCE_PERSON_ID'
                   WHEN 'INVALID_DATE' THEN 'expected a date YYYY-MM-DD'
                   ELSE 'the VCF named in VCF_FILE (' || vcf_source_file || ') has no column for this sample'
               END AS detail,
               CASE WHEN reason_code <> 'ERASED_PERSON' THEN SAMPLE_ID END AS sample_id,
               opt_vcf_file AS vcf_file, vcf_source_file, _batch_id, _source_file, _file_sha256, _line_number
        FROM specimen_checked WHERE reason_code IS NOT NULL
        """
    )
    # per VCF sample column, the manifest key that covers it: its file's, else its batch's
    con.execute(
        """
        CREATE TEMP TABLE sample_specimen AS
        WITH keys AS (SELECT DISTINCT specimen_key FROM specimen_checked)
        SELECT s._file_sha256, s.sample_id, coalesce(fk.specimen_key, bk.specimen_key) AS specimen_key
        FROM (SELECT DISTINCT _file_sha256, sample_id FROM vcf_sample) s JOIN vcf_file f USING (_file_sha256)
        LEFT JOIN keys fk ON fk.specimen_key = 'lab|' || f.batch_id || '|' || f.path_in_batch || '|' || s.sample_id
        LEFT JOIN keys bk ON bk.specimen_key = 'lab|' || f.batch_id || '||' || s.sample_id
        """
    )


def _stage_variants(con) -> None:
    con.execute(
        """
        CREATE TEMP TABLE call_checked AS
        SELECT c.*, s.* EXCLUDE (_file_sha256, record_number, alt_index),
               CASE WHEN h.genotype IS NOT NULL THEN h.zygosity ELSE g.zygosity END AS zygosity, g.phased,
               sp.SOURCE_PERSON_ID AS source_person_id, sp.specimen_key, f.vcf_build,
               coalesce(f.vcf_build, sp.manifest_build) AS effective_build,
               CASE
                   WHEN ss.specimen_key IN (SELECT specimen_key FROM specimen_checked
                                            WHERE reason_code = 'ERASED_PERSON') THEN 'ERASED_PERSON'
                   WHEN ss.specimen_key IN (SELECT specimen_key FROM specimen_checked
                                            WHERE reason_code = 'SAMPLE_PERSON_CONFLICT') THEN 'SAMPLE_PERSON_CONFLICT'
                   WHEN sp.specimen_key IS NULL THEN 'SAMPLE_NOT_IN_MANIFEST'
                   WHEN f.declares_contigs AND vc.contig IS NULL THEN 'UNKNOWN_CONTIG'
                   WHEN f.vcf_build IS NOT NULL AND sp.manifest_build IS NOT NULL
                        AND upper(f.vcf_build) <> upper(sp.manifest_build) THEN 'BUILD_MISMATCH'
               END AS reason_code
        FROM raw_calls c
        JOIN site s USING (_file_sha256, record_number, alt_index)
        JOIN genotype_kind g USING (genotype, alt_index)
        JOIN file_info f USING (_file_sha256)
        LEFT JOIN haploid_call h ON h.genotype = c.genotype AND h.alt_index = c.alt_index AND h.chrom = c.chrom
             AND h.pos = c.pos AND h.vcf_build IS NOT DISTINCT FROM f.vcf_build
        LEFT JOIN sample_specimen ss ON ss._file_sha256 = c._file_sha256 AND ss.sample_id = c.sample_id
        LEFT JOIN specimen_checked sp ON sp.specimen_key = ss.specimen_key AND sp.reason_code IS NULL
        LEFT JOIN vcf_contig vc ON vc._file_sha256 = c._file_sha256 AND vc.contig = c.chrom
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW variant_out AS
        SELECT _file_sha256 || ':' || record_number || ':' || sample_index || ':' || alt_index AS call_key,
               specimen_key, sample_id, source_person_id, chrom, norm_pos AS pos, norm_ref AS ref, norm_alt AS alt,
               pos AS vcf_pos, vcf_ref, vcf_alt, alt_index, n_alt_alleles, variant_type,
               CASE WHEN id = '.' THEN NULL ELSE id END AS rs_id, qual, filter, CASE WHEN coalesce(filter, '.') <> '.' THEN filter = 'PASS' END AS filter_pass,
               genotype, zygosity, phased, depth AS read_depth,
               allele_depths[alt_index + 1] AS alt_read_depth, allele_depths[1] AS ref_read_depth,
               genotype_quality, allele_frequency, annotation_source, gene_symbol, transcript, hgvs_c, hgvs_p,
               consequence, clinical_significance, effective_build AS genome_build,
               record_number, sample_index, _batch_id, _source_file, _file_sha256, _line_number
        FROM call_checked WHERE reason_code IS NULL
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW variant_quarantine_out AS
        SELECT reason_code,
               CASE reason_code WHEN 'UNKNOWN_CONTIG' THEN 'CHROM' WHEN 'BUILD_MISMATCH' THEN 'GENOME_BUILD'
                                ELSE 'sample_id' END AS field,
               CASE reason_code
                   WHEN 'ERASED_PERSON' THEN 'an erasure tombstone names the person of this sample (rwe erase)'
                   WHEN 'SAMPLE_PERSON_CONFLICT'
                       THEN 'the manifest gives this sample of this VCF two SOURCE_PERSON_IDs in one batch'
                   WHEN 'SAMPLE_NOT_IN_MANIFEST' THEN 'the sample column is not in any staged manifest row'
                   WHEN 'UNKNOWN_CONTIG' THEN 'CHROM is not among the header''s ##contig lines'
                   ELSE 'the VCF header''s genome build differs from the manifest''s GENOME_BUILD'
               END AS detail,
               CASE WHEN reason_code <> 'ERASED_PERSON' THEN sample_id END AS sample_id,
               record_number, sample_index, alt_index, _batch_id, _source_file, _file_sha256, _line_number
        FROM call_checked WHERE reason_code IS NOT NULL
        """
    )


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
        _register_raw(con, lake_dir, source)
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
