"""Stream a VCF (plain or BGZF, any number of samples) with cyvcf2 into Arrow record batches of
variant calls: one row per (record, sample, ALT allele) the sample's genotype carries.

The counting rule (ARCHITECTURE's reconciliation unit): for each record and sample, every distinct
ALT allele number k >= 1 among the called alleles of GT gives one call. So 0/1 gives one row (k=1),
1/1 one row, 1/2 two rows (k=1, k=2), a half call ./1 one row. Hom-ref (every called allele 0, e.g.
0/0, 0, 0/.) and no-call (./., .) genotypes give none and are counted; a record without GT gives none.

Memory is bounded by `batch_records`: per record only the cyvcf2 arrays are kept (no numpy call per
sample); after each batch they are stacked and the calls found with a few vectorized operations.

Values: the text fields (CHROM, ID, REF, ALT, FILTER, INFO, FORMAT, the genotype as written, e.g.
0|1) are text; POS, QUAL and the FORMAT integers DP, AD, GQ are kept as htslib parsed them (the header
declares them numbers; '.' becomes null), so nothing is lost to a conversion back and forth. INFO is
kept as one JSON object per record (flags true, lists for Number != 1; see _info_json for floats).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cyvcf2
import numpy as np
import pyarrow as pa

from rwe_assets.lib.genomics import bad_input
from rwe_assets.lib.genomics.header import VcfHeader, parse_header

BATCH_RECORDS = 20_000
_INT32_MISSING = -(2**31)  # htslib's bcf_int32_missing; bcf_int32_vector_end is one more
_ALLELE_MISSING, _ALLELE_PAD = -1, -2  # cyvcf2's genotype array: '.', and the end of a short vector

CALL_FIELDS = [
    pa.field("record_number", pa.int64()),  # 1-based data record of the file
    pa.field("sample_index", pa.int32()),  # 0-based column among the samples
    pa.field("sample_id", pa.string()),
    pa.field("alt_index", pa.int16()),  # the ALT allele (1-based) this row counts
    pa.field("chrom", pa.string()),
    pa.field("pos", pa.int64()),
    pa.field("id", pa.string()),
    pa.field("ref", pa.string()),
    pa.field("alt", pa.string()),  # every ALT allele of the record, comma-separated as in the file
    pa.field("qual", pa.float32()),
    pa.field("filter", pa.string()),  # PASS, '.', or the failed filters joined by ';'
    pa.field("info", pa.string()),  # JSON object
    pa.field("format", pa.string()),  # the FORMAT keys, e.g. GT:AD:DP:GQ
    pa.field("genotype", pa.string()),  # e.g. 0/1, 1|0, 1, ./1
    pa.field("depth", pa.int32()),  # FORMAT DP
    pa.field("allele_depths", pa.list_(pa.int32())),  # FORMAT AD: REF first, then every ALT
    pa.field("genotype_quality", pa.int32()),  # FORMAT GQ
]
# Text repeated on every call of a record (or sample, or genotype spelling) streams as dictionary
# arrays: no copy of INFO per call, and Delta stores them as plain strings (CALL_FIELDS).
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_DICTIONARY_COLUMNS = {"sample_id", "chrom", "id", "ref", "alt", "filter", "info", "format", "genotype"}
STREAM_FIELDS = [pa.field(f.name, _DICTIONARY) if f.name in _DICTIONARY_COLUMNS else f for f in CALL_FIELDS]
CALL_SCHEMA = pa.schema(STREAM_FIELDS)


@dataclass
class VcfCounts:
    """What one pass over a file saw; calls = rows produced."""

    records: int = 0
    records_without_genotypes: int = 0
    genotypes: int = 0  # (record, sample) cells with a GT
    calls: int = 0
    hom_ref: int = 0
    no_call: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def open_vcf(path: Path, relative: str) -> tuple[cyvcf2.VCF, VcfHeader]:
    """Open with cyvcf2 and parse the header; a header htslib rejects is an InputFileError with the
    line where it goes wrong."""
    bad_input.check_bgzf_start(path, relative)
    try:
        vcf = cyvcf2.VCF(str(path))
    except Exception as error:  # cyvcf2 raises bare Exception for a bad header
        raise bad_input.header_error(path, relative, error) from None
    return vcf, parse_header(bad_input.physical_header(path))


# --------------------------------------------------------------------------- one record


@dataclass
class _RecordColumns:
    """Per-record values of one batch, in file order."""

    text: dict[str, list]  # chrom, pos, id, ref, alt, qual, filter, info, format
    alt_counts: list[int]
    genotypes: list[np.ndarray | None]  # cyvcf2 genotype arrays (samples x (ploidy + 1)), None without GT
    depth: list[np.ndarray | None]
    allele_depths: list[np.ndarray | None]
    quality: list[np.ndarray | None]

    @classmethod
    def empty(cls) -> _RecordColumns:
        names = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", "format")
        return cls({n: [] for n in names}, [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.alt_counts)


_INFO_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _info_json(variant: cyvcf2.Variant) -> str:
    """INFO as a JSON object. Float values are htslib's 32-bit floats widened to 64 bits (AF=0.643
    reads 0.6430000066757202; 7 significant digits give the file's text back): rounding each value
    here would triple the cost of the record."""
    return _INFO_ENCODER.encode(dict(variant.INFO))


def _format_array(variant: cyvcf2.Variant, key: str, keys: list[str]) -> np.ndarray | None:
    if key not in keys:
        return None
    values = variant.format(key)
    if values is not None and values.dtype.kind == "f":  # a caller that declares the field Float
        values = np.where(np.isnan(values), _INT32_MISSING, np.rint(values)).astype(np.int32)
    return values


def _add_record(columns: _RecordColumns, variant: cyvcf2.Variant) -> None:
    keys = variant.FORMAT
    text = columns.text
    text["chrom"].append(variant.CHROM)
    text["pos"].append(variant.POS)
    text["id"].append(variant.ID or ".")
    text["ref"].append(variant.REF)
    text["alt"].append(",".join(variant.ALT) or ".")
    text["qual"].append(variant.QUAL)
    text["filter"].append(";".join(variant.FILTERS) or ".")
    text["info"].append(_info_json(variant))
    text["format"].append(":".join(keys))
    columns.alt_counts.append(len(variant.ALT))
    columns.genotypes.append(variant.genotype.array() if "GT" in keys else None)
    columns.depth.append(_format_array(variant, "DP", keys))
    columns.allele_depths.append(_format_array(variant, "AD", keys))
    columns.quality.append(_format_array(variant, "GQ", keys))


# --------------------------------------------------------------------------- vectorized per batch


def _stack(arrays: list[np.ndarray | None], samples: int, fill: int) -> np.ndarray:
    """(records, samples, width) from per-record (samples, w) arrays of varying width; None -> fill."""
    present = [a for a in arrays if a is not None]
    width = max((a.shape[1] for a in present), default=1)
    if len(present) == len(arrays) and all(a.shape[1] == width for a in present):
        return np.stack(present).reshape(len(arrays), samples, width)  # the common case: one call
    out = np.full((len(arrays), samples, width), fill, dtype=present[0].dtype if present else np.int32)
    for i, a in enumerate(arrays):
        if a is not None:
            out[i, :, : a.shape[1]] = a
    return out


def _alleles_and_phase(genotypes: list[np.ndarray | None], samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Alleles (records, samples, ploidy) padded with -2, and the phase flag (records, samples).

    cyvcf2 puts the phase in the column after the last allele of each record, so records of
    different ploidy are split before stacking."""
    widths = [a.shape[1] if a is not None else 1 for a in genotypes]
    ploidy = max(widths) - 1 if genotypes else 1
    alleles = np.full((len(genotypes), samples, max(ploidy, 1)), _ALLELE_PAD, dtype=np.int16)
    phase = np.zeros((len(genotypes), samples), dtype=bool)
    for width in set(widths):
        rows = [i for i, w in enumerate(widths) if w == width and genotypes[i] is not None]
        if not rows:
            continue
        block = np.stack([genotypes[i] for i in rows])
        alleles[rows, :, : width - 1] = block[:, :, : width - 1]
        phase[rows] = block[:, :, width - 1] == 1
    return alleles, phase


@dataclass(frozen=True)
class _Calls:
    record: np.ndarray  # index into the batch
    sample: np.ndarray
    allele: np.ndarray


def _any_allele(alleles: np.ndarray, test) -> np.ndarray:
    """test(allele) for any allele of each (record, sample); OR-ing the ploidy slices is several times
    faster than .any() over a short last axis."""
    result = test(alleles[:, :, 0])
    for j in range(1, alleles.shape[2]):
        result |= test(alleles[:, :, j])
    return result


def find_calls(alleles: np.ndarray, max_alt: int) -> _Calls:
    """Every (record, sample, k) whose called alleles include k >= 1, in file order."""
    if max_alt <= 1:  # the common case: no k axis, np.nonzero gives (record, sample) order
        record, sample = np.nonzero(_any_allele(alleles, lambda a: a == 1))
        return _Calls(record, sample, np.ones(len(record), np.int16))
    k = np.arange(1, max_alt + 1, dtype=alleles.dtype)
    cube = _any_allele(alleles, lambda a: a[:, :, None] == k)
    record, sample, allele = np.nonzero(cube)  # walks the cube in (record, sample, k) order
    return _Calls(record, sample, (allele + 1).astype(np.int16))


def count_non_ref(genotypes: list[np.ndarray | None]) -> int:
    """Calls (per the counting rule) in a list of cyvcf2 genotype arrays; used by the benchmark's
    bare loop so both sides count the same thing."""
    samples = next((a.shape[0] for a in genotypes if a is not None), 0)
    alleles, _ = _alleles_and_phase(genotypes, samples)
    return len(find_calls(alleles, int(alleles.max(initial=0))).record)


def _genotype_text(alleles: np.ndarray, phased: np.ndarray) -> pa.Array:
    """The GT text of each row, built once per distinct (alleles, phase) combination: each row is
    encoded as one integer (alleles + 2 in base 1024, then the phase bit) so np.unique stays 1-D."""
    ploidy = alleles.shape[1]
    digits = (alleles.astype(np.int64) + 2) * (1024 ** np.arange(ploidy, dtype=np.int64))
    codes = digits.sum(axis=1) * 2 + phased
    unique, inverse = np.unique(codes, return_inverse=True)
    texts = []
    for code in unique.tolist():
        values = [(code // 2 // 1024**j) % 1024 - 2 for j in range(ploidy)]
        separator = "|" if code % 2 else "/"
        texts.append(
            separator.join("." if v == _ALLELE_MISSING else str(v) for v in values if v != _ALLELE_PAD)
        )
    return _dictionary(pa.array(texts, pa.string()), inverse.reshape(-1))


def _dictionary(values: pa.Array, indices: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32, copy=False)), values)


def _int_column(values: np.ndarray) -> pa.Array:
    values = values.astype(np.int32, copy=False)
    return pa.array(values, pa.int32(), mask=values <= _INT32_MISSING + 1)


def _allele_depth_column(ad: np.ndarray, alt_counts: np.ndarray, has_ad: np.ndarray) -> pa.Array:
    """AD rows as lists of REF + ALT depths (the record's allele count); null where the record has no
    AD; a '.' entry is a null item."""
    width = np.where(has_ad, np.minimum(alt_counts + 1, ad.shape[1]), 0)
    take = np.arange(ad.shape[1])[None, :] < width[:, None]
    flat = ad[take]
    offsets = np.concatenate([[0], np.cumsum(width)]).astype(np.int32)
    values = pa.array(flat.astype(np.int32), pa.int32(), mask=flat <= _INT32_MISSING + 1)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~has_ad))


def _format_column(arrays: list[np.ndarray | None], calls: _Calls, samples: int) -> np.ndarray:
    stacked = _stack(arrays, samples, _INT32_MISSING)
    return stacked[calls.record, calls.sample]


def _batch_table(columns: _RecordColumns, header: VcfHeader, first_record: int, counts: VcfCounts):
    samples = len(header.samples)
    alt_counts = np.array(columns.alt_counts, dtype=np.int32)
    alleles, phase = _alleles_and_phase(columns.genotypes, samples)
    with_gt = np.array([g is not None for g in columns.genotypes])
    any_called = _any_allele(alleles, lambda a: a >= 0)  # records without GT hold only padding
    any_alt = _any_allele(alleles, lambda a: a > 0)
    counts.records_without_genotypes += int((~with_gt).sum())
    counts.genotypes += int(with_gt.sum()) * samples
    counts.no_call += int(np.count_nonzero(with_gt[:, None] & ~any_called))
    counts.hom_ref += int(np.count_nonzero(any_called & ~any_alt))
    calls = find_calls(alleles, int(alt_counts.max(initial=0)))
    counts.calls += len(calls.record)
    record_take = pa.array(calls.record)
    arrays = {
        "record_number": pa.array(calls.record + first_record, pa.int64()),
        "sample_index": pa.array(calls.sample, pa.int32()),
        "sample_id": _dictionary(pa.array(header.samples, pa.string()), calls.sample),
        "alt_index": pa.array(calls.allele, pa.int16()),
    }
    types = {f.name: f.type for f in CALL_FIELDS}
    for name, values in columns.text.items():
        if name in _DICTIONARY_COLUMNS:
            arrays[name] = _dictionary(pa.array(values, pa.string()), calls.record)
        else:
            arrays[name] = pa.array(values, types[name]).take(record_take)
    arrays["genotype"] = _genotype_text(
        alleles[calls.record, calls.sample], phase[calls.record, calls.sample]
    )
    arrays["depth"] = _int_column(_format_column(columns.depth, calls, samples)[:, 0])
    arrays["allele_depths"] = _allele_depth_column(
        _format_column(columns.allele_depths, calls, samples),
        alt_counts[calls.record],
        np.array([a is not None for a in columns.allele_depths], dtype=bool)[calls.record],
    )
    arrays["genotype_quality"] = _int_column(_format_column(columns.quality, calls, samples)[:, 0])
    return pa.RecordBatch.from_arrays([arrays[f.name] for f in STREAM_FIELDS], schema=CALL_SCHEMA)


# --------------------------------------------------------------------------- the stream


def call_batches(
    path: Path,
    relative: str,
    vcf: cyvcf2.VCF,
    header: VcfHeader,
    counts: VcfCounts,
    provenance: Callable[[np.ndarray], list[tuple[str, pa.Array]]] | None = None,
    batch_records: int = BATCH_RECORDS,
) -> Iterator[pa.RecordBatch]:
    """Record batches of calls (CALL_SCHEMA, plus the columns `provenance(line_numbers)` returns).

    A record htslib cannot parse, or data that ends early, raises InputFileError naming the line."""
    columns, first = _RecordColumns.empty(), 1
    for variant in _records(path, relative, vcf, header, counts):
        _add_record(columns, variant)
        if len(columns) == batch_records:
            yield _with_provenance(_batch_table(columns, header, first, counts), header, provenance)
            first += len(columns)
            columns = _RecordColumns.empty()
    if len(columns):
        yield _with_provenance(_batch_table(columns, header, first, counts), header, provenance)
    bad_input.check_bgzf_end(path, relative, header.line_count + counts.records)


def _records(path, relative, vcf, header, counts) -> Iterator[cyvcf2.Variant]:
    iterator = iter(vcf)
    while True:
        try:
            variant = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # cyvcf2 raises bare Exception for a record htslib rejects
            line = header.line_count + counts.records + 1
            raise bad_input.record_error(path, relative, line, len(header.samples), error) from None
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


def read_calls(path: Path, relative: str | None = None) -> tuple[pa.Table, VcfHeader, VcfCounts]:
    """The whole file's calls as one table (for tests and small files)."""
    relative = relative or Path(path).name
    vcf, header = open_vcf(Path(path), relative)
    counts = VcfCounts()
    try:
        batches = list(call_batches(Path(path), relative, vcf, header, counts))
    finally:
        vcf.close()
    return pa.Table.from_batches(batches, schema=CALL_SCHEMA), header, counts
