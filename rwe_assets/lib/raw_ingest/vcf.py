"""VCF files, read by genomics.vcf_reader: calls into the source's call entity, header lines and counts
into <source>/vcf_header, out-of-range GT alleles into the quarantine."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.genomics import vcf_reader
from rwe_assets.lib.genomics.header import VcfHeader
from rwe_assets.lib.raw_ingest.model import PROVENANCE_FIELDS, VCF_HEADER, Provenance
from rwe_assets.lib.raw_ingest.quarantine import _quarantine_table, _write_quarantine

_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def is_vcf(file_name: str) -> bool:
    return file_name.lower().endswith(_VCF_SUFFIXES)


def _ingest_vcf(lake_dir, source, path, provenance, result) -> None:
    """Calls into <source>/<entity> in one Delta transaction; GT alleles above the record's ALT count
    into the raw quarantine (ALLELE_INDEX_OUT_OF_RANGE); then the header lines and the file's counts
    into <source>/vcf_header. A read error fails the file and writes nothing; any other failure fails
    the file too, naming the last line read."""
    entity = source.entity_for_file(path.name)
    vcf, header = vcf_reader.open_vcf(path, result.relative_path)
    counts = vcf_reader.VcfCounts()
    try:
        _write_vcf(lake_dir, source, entity, path, vcf, header, counts, provenance, result)
    except InputFileError:
        raise
    except Exception as error:
        raise InputFileError(
            result.relative_path,
            f"could not ingest the file ({type(error).__name__})",
            line=header.line_count + counts.records,
        ) from None


def _write_vcf(lake_dir, source, entity, path, vcf, header, counts, provenance, result) -> None:
    failure: list[InputFileError] = []
    stream = vcf_reader.call_batches(path, result.relative_path, vcf, header, counts, provenance.columns)
    target = lake.table_path(lake_dir, "raw", source.name, entity.name)
    try:
        lake.replace_file_rows(
            target,
            pa.RecordBatchReader.from_batches(VCF_CALL_SCHEMA, _keep_error(stream, failure)),
            provenance.file_sha256,
        )
    except Exception:
        if failure:  # Delta wraps what the stream raised: re-raise the reader's own error
            raise failure[0] from None
        raise
    finally:
        vcf.close()
    quarantined = _out_of_range_rows(source.name, entity.name, header, counts, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    header_rows = vcf_header_table(header, counts, provenance)
    lake.replace_file_rows(
        lake.table_path(lake_dir, "raw", source.name, VCF_HEADER), header_rows, provenance.file_sha256
    )
    result.rows_stored = {entity.name: counts.calls}
    result.rows_quarantined = quarantined.num_rows
    result.records_read = counts.calls + quarantined.num_rows
    result.lines_read = header.line_count + counts.records
    result.warnings = counts.warnings()


def _out_of_range_rows(source, entity, header: VcfHeader, counts, provenance) -> pa.Table:
    """One quarantine row per (record, sample, allele k) whose k is above the record's ALT count;
    raw_text is the GT as written."""
    rows = [
        (
            header.line_count + o.record_number,
            vcf_reader.ALLELE_INDEX_OUT_OF_RANGE,
            "GT",
            f"sample column {o.sample_index + 1} ({header.samples[o.sample_index]}): GT allele {o.allele}, "
            f"the record has {o.alt_count} ALT allele{'s' if o.alt_count != 1 else ''}",
            o.genotype,
        )
        for o in counts.out_of_range
    ]
    return _quarantine_table(source, entity, rows, provenance)


def _keep_error(stream, failure: list):
    try:
        yield from stream
    except InputFileError as error:
        failure.append(error)
        raise


VCF_CALL_SCHEMA = pa.schema(vcf_reader.STREAM_FIELDS + PROVENANCE_FIELDS)  # raw/<lab>/variant_call
VCF_HEADER_SCHEMA = pa.schema(
    [
        ("section", pa.string()),  # fileformat, reference, contig, INFO, FORMAT, FILTER, ..., sample, count
        ("item_id", pa.string()),  # ID=, the sample name, or the count's name
        ("number", pa.string()),  # Number= (a sample's 0-based column; a count's value)
        ("type", pa.string()),
        ("description", pa.string()),
        ("length", pa.int64()),
        ("assembly", pa.string()),
        ("text", pa.string()),  # the header line as read
        ("genome_build", pa.string()),  # the build the header tells (reference, assemblies, chr1 length)
    ]
    + PROVENANCE_FIELDS
)


def vcf_header_table(header: VcfHeader, counts: vcf_reader.VcfCounts, provenance: Provenance) -> pa.Table:
    """One row per header line, per sample (line of #CHROM) and per genotype count (line 0 = the file)."""
    rows = [
        (i.line, i.section, i.item_id, i.number, i.item_type, i.description, i.length, i.assembly, i.text)
        for i in header.items
    ]
    rows += [
        (header.line_count, "sample", name, str(k), None, None, None, None, None)
        for k, name in enumerate(header.samples)
    ]
    rows += [
        (0, "count", name, str(value), None, None, None, None, None)
        for name, value in counts.as_dict().items()
    ]
    names = VCF_HEADER_SCHEMA.names[:8]
    arrays = {
        name: pa.array([r[k + 1] for r in rows], VCF_HEADER_SCHEMA.field(name).type)
        for k, name in enumerate(names)
    }
    arrays["genome_build"] = pa.repeat(pa.scalar(header.build, pa.string()), len(rows))
    lines = np.array([r[0] for r in rows], dtype=np.int64)
    arrays.update(dict(provenance.columns(lines)))
    return pa.table(arrays, schema=VCF_HEADER_SCHEMA)
