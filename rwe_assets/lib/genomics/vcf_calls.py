"""The vectorized step both paths of the VCF reader (``vcf_reader``) share: from a batch's genotype
block (records x samples x ploidy) to the call rows, one per (record, sample, ALT allele) carried,
with hom-ref, no-call and out-of-range alleles counted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rwe_assets.lib.genomics.vcf_call_schema import (
    CALL_FIELDS,
    CALL_SCHEMA,
    DICTIONARY_COLUMNS,
    STREAM_FIELDS,
    TEXT_COLUMNS,
    OutOfRange,
)
from rwe_assets.lib.genomics.vcf_records import INT32_MISSING

_ALLELE_MISSING, _ALLELE_PAD = -1, -2  # cyvcf2's genotype array: '.', and the end of a short vector


def _concatenated(arrays: list[np.ndarray | None], samples: int) -> np.ndarray | None:
    """(records, samples, width) in one call when every record has an array of the same width (the
    common case; np.stack would call Python per array), else None."""
    present = [a for a in arrays if a is not None]
    if not present or len(present) < len(arrays):
        return None
    try:
        block = np.concatenate(present)  # (records * samples, width); widths that differ raise
    except ValueError:
        return None
    return block.reshape(len(arrays), samples, block.shape[1])


def _stack(arrays: list[np.ndarray | None], samples: int, fill: int) -> np.ndarray:
    """(records, samples, width) from per-record (samples, w) arrays of varying width; None -> fill."""
    block = _concatenated(arrays, samples)
    if block is not None:
        return block
    present = [a for a in arrays if a is not None]
    width = max((a.shape[1] for a in present), default=1)
    out = np.full((len(arrays), samples, width), fill, dtype=present[0].dtype if present else np.int32)
    for i, a in enumerate(arrays):
        if a is not None:
            out[i, :, : a.shape[1]] = a
    return out


def alleles_and_phase(genotypes: list[np.ndarray | None], samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Alleles (records, samples, ploidy) padded with -2, and the phase flag (records, samples).

    cyvcf2 puts the phase in the column after the last allele of each record, so records of
    different ploidy are split before stacking."""
    block = _concatenated(genotypes, samples)
    if block is not None and block.shape[2] >= 2:  # one ploidy for the whole batch
        return block[:, :, :-1].astype(np.int16), block[:, :, -1] == 1
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
class Calls:
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


def find_calls(alleles: np.ndarray, max_alt: int) -> Calls:
    """Every (record, sample, k) whose called alleles include k >= 1, in file order."""
    if max_alt <= 1:  # the common case: no k axis, np.nonzero gives (record, sample) order
        record, sample = np.nonzero(_any_allele(alleles, lambda a: a == 1))
        return Calls(record, sample, np.ones(len(record), np.int16))
    k = np.arange(1, max_alt + 1, dtype=alleles.dtype)
    cube = _any_allele(alleles, lambda a: a[:, :, None] == k)
    record, sample, allele = np.nonzero(cube)  # walks the cube in (record, sample, k) order
    return Calls(record, sample, (allele + 1).astype(np.int16))


def count_non_ref(genotypes: list[np.ndarray | None]) -> int:
    """Calls (per the counting rule) in a list of cyvcf2 genotype arrays; used by the benchmark's
    bare loop so both sides count the same thing."""
    samples = next((a.shape[0] for a in genotypes if a is not None), 0)
    alleles, _ = alleles_and_phase(genotypes, samples)
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
    return pa.array(values, pa.int32(), mask=values <= INT32_MISSING + 1)


def _allele_depth_column(ad: np.ndarray, alt_counts: np.ndarray, has_ad: np.ndarray) -> pa.Array:
    """AD rows as lists of REF + ALT depths (the record's allele count); null where the record has no
    AD; a '.' entry is a null item."""
    width = np.where(has_ad, np.minimum(alt_counts + 1, ad.shape[1]), 0)
    take = np.arange(ad.shape[1])[None, :] < width[:, None]
    flat = ad[take]
    offsets = np.concatenate([[0], np.cumsum(width)]).astype(np.int32)
    values = pa.array(flat.astype(np.int32), pa.int32(), mask=flat <= INT32_MISSING + 1)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~has_ad))


def format_column(arrays: list[np.ndarray | None], calls: Calls, samples: int) -> np.ndarray:
    stacked = _stack(arrays, samples, INT32_MISSING)
    return stacked[calls.record, calls.sample]


def _set_aside_out_of_range(calls: Calls, alt_counts, alleles, phase, first_record, counts) -> Calls:
    """The calls whose allele k exists in the record (k <= its ALT count); the others are kept in
    counts.out_of_range (few: the loop below runs only for them)."""
    alt_count = alt_counts[calls.record]
    good = calls.allele <= alt_count
    if good.all():
        return calls
    bad = np.nonzero(~good)[0]
    record, sample = calls.record[bad], calls.sample[bad]
    texts = _genotype_text(alleles[record, sample], phase[record, sample]).to_pylist()
    counts.allele_index_out_of_range += len(bad)
    counts.out_of_range.extend(
        OutOfRange(int(r) + first_record, int(s), int(k), int(n), text)
        for r, s, k, n, text in zip(record, sample, calls.allele[bad], alt_count[bad], texts, strict=True)
    )
    return Calls(calls.record[good], calls.sample[good], calls.allele[good])


def calls_table(text, alt_counts, alleles, phase, with_gt, values, header, first_record, counts):
    """The call rows of a batch from its per-record text, its genotype block (records, samples,
    ploidy) and `values(calls, alt_counts)` -> (DP, AD rows, has AD, GQ) of the calls."""
    samples = len(header.samples)
    alt_counts = np.array(alt_counts, dtype=np.int32)
    any_called = _any_allele(alleles, lambda a: a >= 0)  # records without GT hold only padding
    any_alt = _any_allele(alleles, lambda a: a > 0)
    counts.records_without_genotypes += int((~with_gt).sum())
    counts.genotypes += int(with_gt.sum()) * samples
    counts.no_call += int(np.count_nonzero(with_gt[:, None] & ~any_called))
    counts.hom_ref += int(np.count_nonzero(any_called & ~any_alt))
    calls = find_calls(alleles, max(int(alt_counts.max(initial=0)), int(alleles.max(initial=0))))
    calls = _set_aside_out_of_range(calls, alt_counts, alleles, phase, first_record, counts)
    counts.calls += len(calls.record)
    depth, allele_depths, has_ad, quality = values(calls, alt_counts)
    record_take = pa.array(calls.record)
    arrays = {
        "record_number": pa.array(calls.record + first_record, pa.int64()),
        "sample_index": pa.array(calls.sample, pa.int32()),
        "sample_id": _dictionary(pa.array(header.samples, pa.string()), calls.sample),
        "alt_index": pa.array(calls.allele, pa.int16()),
    }
    types = {f.name: f.type for f in CALL_FIELDS}
    for name in TEXT_COLUMNS:
        column = text[name]
        if not isinstance(column, pa.Array):
            column = pa.array(column, pa.string() if name in DICTIONARY_COLUMNS else types[name])
        if name in DICTIONARY_COLUMNS:
            arrays[name] = _dictionary(column, calls.record)
        else:
            arrays[name] = column.take(record_take)
    arrays["genotype"] = _genotype_text(
        alleles[calls.record, calls.sample], phase[calls.record, calls.sample]
    )
    arrays["depth"] = _int_column(depth)
    arrays["allele_depths"] = _allele_depth_column(allele_depths, alt_counts[calls.record], has_ad)
    arrays["genotype_quality"] = _int_column(quality)
    return pa.RecordBatch.from_arrays([arrays[f.name] for f in STREAM_FIELDS], schema=CALL_SCHEMA)
