"""Stream a VCF (plain or BGZF, any number of samples) with cyvcf2 into Arrow record batches of
variant calls: one row per (record, sample, ALT allele) the sample's genotype carries.

The counting rule (ARCHITECTURE's reconciliation unit): for each record and sample, every distinct
ALT allele number k >= 1 among the called alleles of GT gives one call. So 0/1 gives one row (k=1),
1/1 one row, 1/2 two rows (k=1, k=2), a half call ./1 one row. Hom-ref (every called allele 0, e.g.
0/0, 0, 0/.) and no-call (./., .) genotypes give none and are counted; a record without GT gives none.

Two paths give the same rows, counts and errors (rwe_assets_tests/lib/genomics/test_vcf_text.py):
- text VCFs (plain, gzip/BGZF) go through vcf_text, about TEXT_BLOCK_BYTES at a time: the block is
  cut at its tabs with numpy, GT decoded from each cell's first bytes, DP/AD/GQ parsed for the call
  cells only, and only CHROM..INFO of each line parsed by htslib (for INFO). htslib's full parse of
  every sample's FORMAT values, which the calls do not need, is skipped.
- from the first block vcf_text does not read exactly as htslib (see its docstring), and for BCF,
  the cyvcf2 path: per record the loop only keeps the cyvcf2 record; every READ_RECORDS records each
  field is read with one map over them (C-level getters), INFO encoded to JSON in one map; per batch
  the FORMAT and genotype arrays are stacked.
Both find the calls with the same vectorized step (calls_table). Memory is bounded by
`batch_records`. Annotations (ANN, EFF, CSQ) stay in INFO as written: staging parses them.

Values: the text fields (CHROM, ID, REF, ALT, FILTER, INFO, FORMAT, the genotype as written, e.g.
0|1) are text; POS, QUAL and the FORMAT integers DP, AD, GQ are kept as htslib parsed them (the header
declares them numbers; '.' becomes null), so nothing is lost to a conversion back and forth. INFO is
kept as one JSON object per record (flags true, lists for Number != 1; see Declared.info_json for floats).

Tolerance (as bcftools): an INFO or FORMAT field a record uses but the header does not declare is read
as htslib reads it, as a string (DP, AD and GQ are then converted to integers where the text is one,
else null); it is counted per field (VcfCounts.undeclared) and reported as a warning. A GT allele index
above the record's ALT count is no call: it is kept aside (VcfCounts.out_of_range) for the raw
quarantine (ALLELE_INDEX_OUT_OF_RANGE), and the record's other calls go on. Any other failure while
reading a file is an InputFileError naming the file and the line of the record.

BCF (`*.bcf`, BGZF or plain) is read the same way; its records have no lines, so a record's line is
the one it would have in the VCF text (the BCF header's lines + the record number).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cyvcf2
import numpy as np
import pyarrow as pa

from rwe_assets.errors import InputFileError
from rwe_assets.lib.genomics import bad_input, vcf_text
from rwe_assets.lib.genomics.header import VcfHeader, parse_header
from rwe_assets.lib.genomics.vcf_call_schema import (
    ALLELE_INDEX_OUT_OF_RANGE,
    CALL_SCHEMA,
    STREAM_FIELDS,
    VcfCounts,
)
from rwe_assets.lib.genomics.vcf_calls import (
    Calls,
    alleles_and_phase,
    calls_table,
    format_column,
)
from rwe_assets.lib.genomics.vcf_records import RECORD_INFO, Declared, RecordColumns, read_batch

# the reader's public names, those of the schema and call modules that callers use as vcf_reader.<name>
__all__ = [
    "ALLELE_INDEX_OUT_OF_RANGE",
    "BATCH_RECORDS",
    "CALL_SCHEMA",
    "STREAM_FIELDS",
    "VcfCounts",
    "call_batches",
    "open_vcf",
    "read_calls",
]

BATCH_RECORDS = 20_000
# Records whose fields are read together (read_batch): enough to spread the per-call overhead, few
# enough that htslib's freed records are reused (with 20,000 records held at once, reading the same
# fields took 1.5x as long at 100 samples).
READ_RECORDS = 64
# Text per block of the text path (vcf_text), estimated from the sample count: its array passes then
# run on data that stays in the CPU caches (at 100 samples, blocks of 1,000 lines took 0.7x the CPU
# of blocks of 20,000 lines).
TEXT_BLOCK_BYTES = 2_000_000
# Files smaller than this on disk keep the cyvcf2 path: the text path's gain is in the records, and its
# setup (a second open, htslib's sites-only header) is not worth it for a few hundred lines.
TEXT_PATH_MIN_BYTES = 1 << 20


def open_vcf(path: Path, relative: str) -> tuple[cyvcf2.VCF, VcfHeader]:
    """Open with cyvcf2 (VCF, BGZF VCF or BCF) and parse the header; a header htslib rejects is an
    InputFileError with the line where it goes wrong."""
    bad_input.check_bgzf_start(path, relative)
    try:
        vcf = cyvcf2.VCF(str(path))
    except Exception as error:  # cyvcf2 raises bare Exception for a bad header
        raise bad_input.header_error(path, relative, error) from None
    return vcf, parse_header(bad_input.physical_header(path))


def _add_record(pending: list[cyvcf2.Variant], variant: cyvcf2.Variant) -> None:
    """All the loop does per record: keep it (its fields are read READ_RECORDS at a time, read_batch)."""
    pending.append(variant)


def _read_checked(
    variants: list[cyvcf2.Variant], declared: Declared, header: VcfHeader, first: int, relative: str
):
    """read_batch, or an InputFileError naming the line of the first record that fails to read on
    its own (found by reading the batch again record by record)."""
    try:
        return read_batch(variants, declared)
    except Exception as error:
        scratch = Declared(header, VcfCounts())
        failing = 0
        for i, variant in enumerate(variants):
            try:
                read_batch([variant], scratch)
            except Exception:
                failing = i
                break
        raise bad_input.unexpected_error(relative, header.line_count + first + failing, error) from None


def _batch_table(columns: RecordColumns, header: VcfHeader, first_record: int, counts: VcfCounts):
    samples = len(header.samples)
    alleles, phase = alleles_and_phase(columns.genotypes, samples)
    with_gt = np.array([g is not None for g in columns.genotypes], dtype=bool)
    has_ad = np.array([a is not None for a in columns.allele_depths], dtype=bool)

    def values(calls: Calls, alt_counts: np.ndarray):
        return (
            format_column(columns.depth, calls, samples)[:, 0],
            format_column(columns.allele_depths, calls, samples),
            has_ad[calls.record],
            format_column(columns.quality, calls, samples)[:, 0],
        )

    return calls_table(
        columns.text, columns.alt_counts, alleles, phase, with_gt, values, header, first_record, counts
    )


# --------------------------------------------------------------------------- the stream


def call_batches(
    path: Path,
    relative: str,
    vcf: cyvcf2.VCF,
    header: VcfHeader,
    counts: VcfCounts,
    provenance: Callable[[np.ndarray], list[tuple[str, pa.Array]]] | None = None,
    batch_records: int = BATCH_RECORDS,
    text_path: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Record batches of calls (CALL_SCHEMA, plus the columns `provenance(line_numbers)` returns).

    Text VCFs are read by the text fast path (vcf_text) block by block; from the first block it does
    not read exactly, and for BCF, the cyvcf2 path reads the rest. A record htslib cannot parse, data
    that ends early, or any other failure while reading a record raises InputFileError naming the line."""
    done = 0
    if _text_path_applies(path, header, text_path):
        fast = _TextPath(path, vcf, header, counts, batch_records)
        for batch in fast.batches():
            yield _with_provenance(batch, header, provenance)
        if fast.finished:
            bad_input.check_bgzf_end(path, relative, header.line_count + counts.records)
            return
        done = counts.records
    columns, pending, first = RecordColumns.empty(), [], done + 1
    declared = Declared(header, counts)
    for variant in _records(path, relative, vcf, header, counts, skip=done):
        try:
            _add_record(pending, variant)
        except Exception as error:
            raise bad_input.unexpected_error(relative, header.line_count + counts.records, error) from None
        if len(pending) == READ_RECORDS or len(columns) + len(pending) == batch_records:
            columns.extend(_read_checked(pending, declared, header, first + len(columns), relative))
            pending.clear()
            if len(columns) == batch_records:
                yield _with_provenance(
                    _checked_table(columns, header, first, counts, relative), header, provenance
                )
                first += len(columns)
                columns = RecordColumns.empty()
    if pending:
        columns.extend(_read_checked(pending, declared, header, first + len(columns), relative))
        pending.clear()
    if len(columns):
        yield _with_provenance(_checked_table(columns, header, first, counts, relative), header, provenance)
    bad_input.check_bgzf_end(path, relative, header.line_count + counts.records)


def _text_path_applies(path: Path, header: VcfHeader, wanted: bool) -> bool:
    if not wanted or not header.samples or path.stat().st_size < TEXT_PATH_MIN_BYTES:
        return False
    return not bad_input.is_bcf(path)


class _TextPath:
    """Batches from vcf_text blocks while they are eligible; `finished` tells whether the whole file
    was read (else counts.records is where the cyvcf2 path takes over)."""

    def __init__(self, path: Path, vcf: cyvcf2.VCF, header: VcfHeader, counts: VcfCounts, batch_records: int):
        self.path, self.header, self.counts = path, header, counts
        self.block_lines = batch_records
        self.sites = cyvcf2.Writer.from_string(os.devnull, _sites_only(vcf.raw_header))
        self.finished = False

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            with vcf_text.open_text(self.path) as handle:
                blocks = vcf_text.line_blocks(
                    handle, self.header.line_count, self.block_lines, TEXT_BLOCK_BYTES
                )
                for data in blocks:
                    batch = self._batch(data)
                    if batch is None:
                        return
                    yield batch
            self.finished = True
        except (EOFError, OSError, zlib.error):  # damaged data: the cyvcf2 path names the line
            return
        finally:
            self.sites.close()

    def _batch(self, data: bytes) -> pa.RecordBatch | None:
        """One block's calls, counted into self.counts only when the whole block is eligible."""
        scratch = VcfCounts()
        try:
            block = vcf_text.parse_block(data, len(self.header.samples))
            declared = Declared(self.header, scratch)
            variants = self._sites(block.sites)
            declared.check_format_counts(
                {
                    text: int(n)
                    for text, n in zip(block.formats, np.bincount(block.format_codes), strict=False)
                },
                {text: text.split(":") for text in block.formats},
            )
            text = dict(block.columns, info=declared.info_json(list(map(dict, map(RECORD_INFO, variants)))))
            alt_counts = block.alt_counts
            with_gt = np.ones(len(variants), dtype=bool)

            def values(calls: Calls, alt_counts: np.ndarray):
                return vcf_text.call_values(block, calls.record, calls.sample, alt_counts)

            batch = calls_table(
                text, alt_counts, block.alleles, block.phase, with_gt, values, self.header,
                self.counts.records + 1, scratch,
            )  # fmt: skip
        except vcf_text.NotEligible:
            return None
        scratch.records = len(variants)
        _merge(self.counts, scratch)
        return batch

    def _sites(self, sites: list[str]) -> list[cyvcf2.Variant]:
        try:
            return list(map(self.sites.variant_from_string, sites))
        except Exception:  # cyvcf2 raises bare Exception: the cyvcf2 path reports it with its line
            raise vcf_text.NotEligible("record") from None


def _sites_only(raw_header: str) -> str:
    """htslib's header with the #CHROM line cut after INFO: records of CHROM to INFO parse alone."""
    lines = raw_header.rstrip("\n").split("\n")
    lines[-1] = "\t".join(lines[-1].split("\t")[:8])
    return "\n".join(lines) + "\n"


def _merge(counts: VcfCounts, scratch: VcfCounts) -> None:
    for name, value in scratch.__dict__.items():
        if isinstance(value, int):
            setattr(counts, name, getattr(counts, name) + value)
    for name, n in scratch.undeclared.items():
        counts.undeclared[name] = counts.undeclared.get(name, 0) + n
    counts.out_of_range.extend(scratch.out_of_range)


def _checked_table(columns: RecordColumns, header: VcfHeader, first: int, counts: VcfCounts, relative: str):
    """_batch_table, or an InputFileError naming the line of the first record that fails on its own
    (the batch's first line if none does): found by re-reading the batch record by record."""
    try:
        return _batch_table(columns, header, first, counts)
    except InputFileError:
        raise
    except Exception as error:
        line = header.line_count + first + _first_failing(columns, header)
        raise bad_input.unexpected_error(relative, line, error) from None


def _first_failing(columns: RecordColumns, header: VcfHeader) -> int:
    for i in range(len(columns)):
        one = RecordColumns(
            {name: values[i : i + 1] for name, values in columns.text.items()},
            columns.alt_counts[i : i + 1],
            columns.genotypes[i : i + 1],
            columns.depth[i : i + 1],
            columns.allele_depths[i : i + 1],
            columns.quality[i : i + 1],
        )
        try:
            _batch_table(one, header, 1, VcfCounts())
        except Exception:
            return i
    return 0


def _records(path, relative, vcf, header, counts, skip: int = 0) -> Iterator[cyvcf2.Variant]:
    """The records after the first `skip` (already read and counted by the text path)."""
    iterator, read = iter(vcf), 0
    while True:
        try:
            variant = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # cyvcf2 raises bare Exception for a record htslib rejects
            line = header.line_count + read + 1
            raise bad_input.record_error(path, relative, line, len(header.samples), error) from None
        read += 1
        if read > skip:
            counts.records += 1
            yield variant


def _with_provenance(batch: pa.RecordBatch, header: VcfHeader, provenance) -> pa.RecordBatch:
    if provenance is None:
        return batch
    lines = batch.column("record_number").to_numpy() + header.line_count
    extra = provenance(lines)
    return pa.RecordBatch.from_arrays(
        list(batch.columns) + [a for _, a in extra], names=batch.schema.names + [n for n, _ in extra]
    )


def read_calls(
    path: Path, relative: str | None = None, batch_records: int = BATCH_RECORDS, text_path: bool = True
) -> tuple[pa.Table, VcfHeader, VcfCounts]:
    """The whole file's calls as one table (for tests and small files); text_path=False reads every
    record with cyvcf2 (the reference the text path is tested against)."""
    relative = relative or Path(path).name
    vcf, header = open_vcf(Path(path), relative)
    counts = VcfCounts()
    try:
        batches = list(
            call_batches(Path(path), relative, vcf, header, counts, None, batch_records, text_path)
        )
    finally:
        vcf.close()
    return pa.Table.from_batches(batches, schema=CALL_SCHEMA), header, counts
