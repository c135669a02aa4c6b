"""The specimen and variant staging statements of genomics staging (``staging``), run in DuckDB over
its inputs: sample identity (manifest row -> VCF file -> specimen -> person), erased persons refused,
and every quarantine reason of the module docstring of ``staging``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rwe_assets.lib.genomics.header import normalize_build
from rwe_assets.lib.governance import tombstone

SOURCE_SYSTEM = "lab"  # the source system of a sample manifest's SOURCE_PERSON_ID (the linkage crosswalk's)


_OPTIONAL_MANIFEST_COLUMNS = ("VCF_FILE", "ORDERING_SITE")


def vcf_files(con, source: str) -> None:
    """vcf_file: per ingested VCF its batch, path in the batch folder (what a manifest's VCF_FILE
    names), ingestion time and header build; sample_scope is filled by stage_specimens."""
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


def refuse_erased(con, lake_dir: Path) -> None:
    """TEMP TABLE g_erased: the manifest's persons an erasure tombstone names (governance/tombstone.py).
    Their specimens and calls are quarantined as ERASED_PERSON without the sample name."""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW g_records AS SELECT DISTINCT '{SOURCE_SYSTEM}' AS source_system, "
        "trim(SOURCE_PERSON_ID) AS source_person_id FROM raw_manifest"
    )
    tombstone.register_refused(con, lake_dir, "g_records", "g_erased")


def stage_specimens(con) -> None:
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
            QUALIFY row_number() OVER (PARTITION BY n._file_sha256, n._source_file, n._line_number
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
            WHEN _resent AND vcf_sha IS NULL AND NOT in_vcf THEN 'DUPLICATE_SAMPLE_ID'
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
                   WHEN 'DUPLICATE_SAMPLE_ID' THEN CASE WHEN copy_rank = 1 AND _batch_id = latest_batch
                       THEN 'the manifest re-sent unchanged, with no VCF of this sample: staged from its first batch'
                       ELSE 'a later manifest row is for the same sample of the same VCF' END
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


def stage_variants(con) -> None:
    """call_checked: every raw call with its site, genotype, specimen and quarantine reason; variant_out
    and variant_quarantine_out split it. rs_id is the first dbSNP id (rs<digits>) of the ID column: a
    caller's own ids there (`ID1`, COSMIC ids) are no rsID. variant_origin is 'Somatic' for the sample
    column a header's ##tumor_sample= names (GATK Mutect2), else 'Germline' (the lab's panels)."""
    con.execute(
        """
        CREATE TEMP VIEW tumor_sample AS
        SELECT DISTINCT _file_sha256, trim(regexp_extract(text, '^##tumor_sample=(.*)$', 1)) AS sample_id
        FROM raw_header WHERE section = 'tumor_sample'
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE call_checked AS
        SELECT c.*, s.* EXCLUDE (_file_sha256, record_number, alt_index),
               CASE WHEN t.sample_id IS NOT NULL THEN 'Somatic' ELSE 'Germline' END AS variant_origin,
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
        LEFT JOIN tumor_sample t ON t._file_sha256 = c._file_sha256 AND t.sample_id = c.sample_id
        """
    )
    con.execute(
        """
        CREATE TEMP VIEW variant_out AS
        SELECT _file_sha256 || ':' || record_number || ':' || sample_index || ':' || alt_index AS call_key,
               specimen_key, sample_id, source_person_id, chrom, norm_pos AS pos, norm_ref AS ref, norm_alt AS alt,
               pos AS vcf_pos, vcf_ref, vcf_alt, alt_index, n_alt_alleles, variant_type,
               nullif(regexp_extract(id, '(^|;)(rs[0-9]+)(;|$)', 2), '') AS rs_id, qual, filter, CASE WHEN coalesce(filter, '.') <> '.' THEN filter = 'PASS' END AS filter_pass,
               genotype, zygosity, phased, depth AS read_depth,
               allele_depths[alt_index + 1] AS alt_read_depth, allele_depths[1] AS ref_read_depth,
               genotype_quality, allele_frequency, annotation_source, gene_symbol, transcript, hgvs_c, hgvs_p,
               consequence, clinical_significance, variant_origin, effective_build AS genome_build,
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
