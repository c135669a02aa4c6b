"""Inputs of genomics staging (``staging``): the raw tables of a lab source registered in DuckDB (only
files the ingest manifest lists as ingested), their VCF headers, and what is worked out once per file,
per site or per genotype spelling in Python (normalization, annotation, zygosity) for the per-call join."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from rwe_assets.errors import ReconciliationError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import annotations, normalize
from rwe_assets.lib.genomics.header import VcfHeader, parse_header
from rwe_assets.lib.raw_ingest import VCF_CALL_SCHEMA, VCF_HEADER, VCF_HEADER_SCHEMA, Status, read_manifest

CALL_ENTITY, MANIFEST_ENTITY = "variant_call", "sample_manifest"
# The VCF tables a lab source may not have yet: a batch may send the sample manifest alone.
_VCF_TABLES = {CALL_ENTITY: VCF_CALL_SCHEMA, VCF_HEADER: VCF_HEADER_SCHEMA}

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


def register_raw(con, lake_dir: Path, source: str) -> list[str]:
    """Views raw_calls, raw_header, raw_manifest over the ingested files of `source`; raw_manifest also
    holds the rows of every sample manifest re-sent byte for byte in a later batch (_resent_manifests)."""
    manifest = read_manifest(lake_dir, source).to_pylist()
    ingested = sorted({r["file_sha256"] for r in manifest if r["status"] == Status.INGESTED})
    con.execute("CREATE TEMP TABLE ingested_file (sha VARCHAR)")
    con.executemany("INSERT INTO ingested_file VALUES (?)", [(sha,) for sha in ingested])
    _resent_manifests(con, manifest)
    for view, entity in (
        ("raw_calls", CALL_ENTITY),
        ("raw_header", VCF_HEADER),
        ("raw_manifest", MANIFEST_ENTITY),
    ):
        if not lake.register_view(con, f"{view}_all", lake.table_path(lake_dir, "raw", source, entity)):
            if entity not in _VCF_TABLES:
                raise ReconciliationError(f"raw/{source}/{entity} does not exist: ingest a lab batch first")
            con.register(f"{view}_all", _VCF_TABLES[entity].empty_table())  # no VCF ingested yet
        manifest = view == "raw_manifest"
        con.execute(
            f"CREATE TEMP VIEW {view} AS SELECT *{', false AS _resent' if manifest else ''} FROM {view}_all "
            "WHERE _file_sha256 IN (SELECT sha FROM ingested_file)" + (_RESENT_ROWS if manifest else "")
        )
    return [row[0] for row in con.execute("SELECT DISTINCT _file_sha256 FROM raw_header").fetchall()]


# The re-sent copy of a manifest row: the row as stored, under the batch, path and time that re-sent it
# (`_resent`: a copy that names no VCF of its batch is the row already staged, not a new specimen).
_RESENT_ROWS = """
    UNION ALL
    SELECT m.* REPLACE (r.batch_id AS _batch_id, r.relative_path AS _source_file, r.ingested_at AS _ingested_at),
           true AS _resent
    FROM raw_manifest_all m JOIN resent_file r ON r.sha = m._file_sha256
    WHERE m._file_sha256 IN (SELECT sha FROM ingested_file)
"""


def _resent_manifests(con, manifest: list[dict]) -> None:
    """TEMP TABLE resent_file: the files ingest recorded as `duplicate` (same bytes as a file already
    ingested). A lab re-sends its manifest unchanged with a new VCF of the same samples: that batch's
    manifest says who the new VCF's samples are, so its rows count as the batch's own (a duplicate
    VCF or a duplicate of a non-manifest file matches no manifest row and adds nothing)."""
    con.execute(
        "CREATE TEMP TABLE resent_file (sha VARCHAR, batch_id VARCHAR, relative_path VARCHAR, ingested_at TIMESTAMPTZ)"
    )
    rows = [
        (r["file_sha256"], r["batch_id"], r["relative_path"], r["ingested_at"])
        for r in manifest
        if r["status"] == Status.DUPLICATE
    ]
    if rows:
        con.executemany("INSERT INTO resent_file VALUES (?, ?, ?, ?)", rows)


def read_headers(con, files: list[str]) -> dict[str, tuple[VcfHeader, str | None]]:
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


def file_info_table(headers) -> pa.Table:
    rows = [(sha, build, bool(header.contigs)) for sha, (header, build) in headers.items()]
    return pa.Table.from_pylist(
        [dict(zip(_FILE_SCHEMA.names, r, strict=True)) for r in rows], schema=_FILE_SCHEMA
    )


def contig_table(headers) -> pa.Table:
    rows = [
        {"_file_sha256": sha, "contig": name}
        for sha, (header, _) in headers.items()
        for name in header.contigs
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("_file_sha256", pa.string()), ("contig", pa.string())])
    )


def sample_table(headers) -> pa.Table:
    rows = [
        {"_file_sha256": sha, "sample_id": s} for sha, (header, _) in headers.items() for s in header.samples
    ]
    return pa.Table.from_pylist(
        rows, schema=pa.schema([("_file_sha256", pa.string()), ("sample_id", pa.string())])
    )


# --------------------------------------------------------------------------- per site, per genotype


def site_table(con, headers) -> pa.Table:
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


def genotype_kind_table(con) -> pa.Table:
    rows = con.execute("SELECT DISTINCT genotype, alt_index FROM raw_calls").fetchall()
    out = [
        {"genotype": gt, "alt_index": k, "zygosity": normalize.zygosity(gt, k), "phased": "|" in gt}
        for gt, k in rows
    ]
    return pa.Table.from_pylist(out, schema=_GENOTYPE_SCHEMA)


def haploid_call_table(con) -> pa.Table:
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
