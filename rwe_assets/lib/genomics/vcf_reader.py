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
Both find the calls with the same vectorized step (_calls_table). Memory is bounded by
`batch_records`. Annotations (ANN, EFF, CSQ) stay in INFO as written: staging parses them.

Values: the text fields (CHROM, ID, REF, ALT, FILTER, INFO, FORMAT, the genotype as written, e.g.
0|1) are text; POS, QUAL and the FORMAT integers DP, AD, GQ are kept as htslib parsed them (the header
declares them numbers; '.' becomes null), so nothing is lost to a conversion back and forth. INFO is
kept as one JSON object per record (flags true, lists for Number != 1; see _Declared.info_json for floats).

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

import json
import json.encoder
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, methodcaller
from pathlib import Path

import cyvcf2
import numpy as np
import pyarrow as pa

from rwe_assets.errors import InputFileError
from rwe_assets.lib.genomics import bad_input, vcf_text
from rwe_assets.lib.genomics.header import VcfHeader, parse_header

BATCH_RECORDS = 20_000
# Records whose fields are read together (_read_batch): enough to spread the per-call overhead, few
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
_INT32_MISSING = -(2**31)  # htslib's bcf_int32_missing; bcf_int32_vector_end is one more
_INT32_VECTOR_END = _INT32_MISSING + 1
ALLELE_INDEX_OUT_OF_RANGE = "ALLELE_INDEX_OUT_OF_RANGE"
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


@dataclass(frozen=True)
class OutOfRange:
    """A (record, sample, allele) whose GT allele index is above the record's ALT count."""

    record_number: int
    sample_index: int
    allele: int
    alt_count: int
    genotype: str  # GT as written, e.g. 0/2


@dataclass
class VcfCounts:
    """What one pass over a file saw; calls = rows produced (out-of-range alleles are not calls)."""

    records: int = 0
    records_without_genotypes: int = 0
    genotypes: int = 0  # (record, sample) cells with a GT
    calls: int = 0
    hom_ref: int = 0
    no_call: int = 0
    allele_index_out_of_range: int = 0
    undeclared: dict[str, int] = field(default_factory=dict)  # "INFO:XX" / "FORMAT:DP" -> records
    out_of_range: list[OutOfRange] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts stored in raw vcf_header: the genotype counts, the out-of-range alleles, the
        number of undeclared fields and, per undeclared field, the records that use it."""
        counts = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        counts["undeclared_fields"] = len(self.undeclared)
        counts.update({f"undeclared_{name}": n for name, n in sorted(self.undeclared.items())})
        return counts

    def warnings(self) -> list[str]:
        """One line per undeclared field, INFO first, by name."""
        order = sorted(self.undeclared, key=lambda name: (not name.startswith("INFO:"), name))
        out = []
        for name in order:
            section, item = name.split(":", 1)
            n = self.undeclared[name]
            out.append(
                f"undeclared {section} field {item} ({n} record{'s' if n != 1 else ''}) read as String"
            )
        return out


def open_vcf(path: Path, relative: str) -> tuple[cyvcf2.VCF, VcfHeader]:
    """Open with cyvcf2 (VCF, BGZF VCF or BCF) and parse the header; a header htslib rejects is an
    InputFileError with the line where it goes wrong."""
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

    def extend(self, other: _RecordColumns) -> None:
        for name, values in self.text.items():
            values.extend(other.text[name])
        self.alt_counts.extend(other.alt_counts)
        self.genotypes.extend(other.genotypes)
        self.depth.extend(other.depth)
        self.allele_depths.extend(other.allele_depths)
        self.quality.extend(other.quality)

    def __len__(self) -> int:
        return len(self.alt_counts)


_INFO_ENCODER = json.JSONEncoder(separators=(",", ":"))
# The C encoder that _INFO_ENCODER.encode builds on every call, built once (same arguments, so the
# same text): encoding a batch is then one map with no Python frame per record.
_C_INFO_ENCODER = (
    json.encoder.c_make_encoder(
        None, _INFO_ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def _info_texts(infos: list[dict]) -> list[str]:
    if _C_INFO_ENCODER is None:
        return list(map(_INFO_ENCODER.encode, infos))
    return list(map("".join, map(_C_INFO_ENCODER, infos, repeat(0))))


class _Declared:
    """The INFO and FORMAT ids the header declares; counts the records using undeclared ones."""

    def __init__(self, header: VcfHeader, counts: VcfCounts):
        self.info = frozenset(header.info)
        self.formats = frozenset(header.formats)
        self.counts = counts
        self._format_strings: dict[str, tuple[str, ...]] = {}  # FORMAT text -> its undeclared keys

    def info_json(self, infos: list[dict]) -> list[str]:
        """INFO of each record as a JSON object. Float values are htslib's 32-bit floats widened to 64
        bits (AF=0.643 reads 0.6430000066757202; 7 significant digits give the file's text back):
        rounding each value here would triple the cost of the record. An undeclared key without a
        value (htslib reads it as an empty String) is true, like a flag."""
        undeclared = set().union(*infos) - self.info
        if undeclared:  # rare: only then a look at each record
            for info in infos:
                for key in info.keys() & undeclared:
                    self._count(f"INFO:{key}")
                    if info[key] is False:
                        info[key] = True
        return _info_texts(infos)

    def check_formats(self, format_texts: list[str], keys_of: dict[str, list[str]]) -> None:
        """Counts the records per undeclared FORMAT key, once per distinct FORMAT text of the batch."""
        self.check_format_counts(Counter(format_texts), keys_of)

    def check_format_counts(self, records_per_format: dict[str, int], keys_of: dict[str, list[str]]) -> None:
        for format_text, records in records_per_format.items():
            undeclared = self._format_strings.get(format_text)
            if undeclared is None:
                keys = keys_of[format_text]
                undeclared = self._format_strings[format_text] = tuple(
                    k for k in keys if k not in self.formats
                )
            for key in undeclared:
                self._count(f"FORMAT:{key}", records)

    def _count(self, name: str, records: int = 1) -> None:
        undeclared = self.counts.undeclared
        undeclared[name] = undeclared.get(name, 0) + records


def _integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        return _INT32_MISSING
    return value if _INT32_VECTOR_END < value < 2**31 else _INT32_MISSING


def _integers_from_text(values: np.ndarray) -> np.ndarray:
    """(samples, width) int32 from a field htslib read as String ('12', '5,7', '.'): integers where the
    text is one, else missing; shorter lists end with htslib's vector end."""
    flat = values.reshape(values.shape[0], -1)[:, 0]
    items = [(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).split(",") for v in flat]
    out = np.full((len(items), max((len(i) for i in items), default=1)), _INT32_VECTOR_END, np.int32)
    for row, texts in enumerate(items):
        out[row, : len(texts)] = [_integer(t) for t in texts]
    return out


def _as_integers(values: np.ndarray | None) -> np.ndarray | None:
    if values is None:
        return None
    if values.dtype.kind == "f":  # a caller that declares the field Float
        with np.errstate(invalid="ignore"):  # NaN (missing) is replaced below, never cast
            values = np.where(np.isfinite(values), np.rint(values), _INT32_MISSING).astype(np.int32)
    elif values.dtype.kind in "SUO":  # undeclared (htslib assumes String) or declared String
        values = _integers_from_text(values)
    return values


# --------------------------------------------------------------------------- one batch of records

# Read through map() over a batch's records: C-level getters, no Python frame per record.
_SITE_FIELDS = attrgetter("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTERS")
_FORMAT = attrgetter("FORMAT")
_INFO = attrgetter("INFO")
_GENOTYPE = attrgetter("genotype")
_ARRAY = methodcaller("array")


def _add_record(pending: list[cyvcf2.Variant], variant: cyvcf2.Variant) -> None:
    """All the loop does per record: keep it (its fields are read READ_RECORDS at a time, _read_batch)."""
    pending.append(variant)


def _where_present(variants, format_texts, keys_of, key: str, read: Callable[[list], list]) -> list:
    """read(records) for the records whose FORMAT has `key`, None for the others."""
    having = {text for text, keys in keys_of.items() if key in keys}
    if len(having) == len(keys_of):
        return read(variants)
    out = [None] * len(variants)
    if having:
        rows = [i for i, text in enumerate(format_texts) if text in having]
        for i, value in zip(rows, read([variants[i] for i in rows]), strict=True):
            out[i] = value
    return out


def _genotype_arrays(variants: list[cyvcf2.Variant]) -> list[np.ndarray]:
    return list(map(_ARRAY, map(_GENOTYPE, variants)))


def _format_integers(variants, format_texts, keys_of, key: str) -> list[np.ndarray | None]:
    read = methodcaller("format", key)
    values = _where_present(variants, format_texts, keys_of, key, lambda records: list(map(read, records)))
    if {a.dtype.kind for a in values if a is not None} & set("fSUO"):
        values = list(map(_as_integers, values))
    return values


_TEXT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", "format")


def _text_columns(variants: list, formats: list[list[str]], declared: _Declared) -> tuple[dict, list[int]]:
    """The per-record text columns and ALT counts, each read with one map over the records."""
    chrom, pos, ids, ref, alts, qual, filters = map(list, zip(*map(_SITE_FIELDS, variants), strict=True))
    format_texts = list(map(":".join, formats))
    declared.check_formats(format_texts, dict(zip(format_texts, formats, strict=True)))
    text = {
        "chrom": chrom,
        "pos": pos,
        "id": [i or "." for i in ids],
        "ref": ref,
        "alt": [a or "." for a in map(",".join, alts)],
        "qual": qual,
        "filter": [f or "." for f in map(";".join, filters)],
        "info": declared.info_json(list(map(dict, map(_INFO, variants)))),
        "format": format_texts,
    }
    return text, list(map(len, alts))


def _read_batch(variants: list[cyvcf2.Variant], declared: _Declared) -> _RecordColumns:
    """The columns of a few records (READ_RECORDS), each read with one map over the records."""
    formats = list(map(_FORMAT, variants))
    text, alt_counts = _text_columns(variants, formats, declared)
    format_texts = text["format"]
    keys_of = dict(zip(format_texts, formats, strict=True))
    return _RecordColumns(
        text,
        alt_counts,
        _where_present(variants, format_texts, keys_of, "GT", _genotype_arrays),
        _format_integers(variants, format_texts, keys_of, "DP"),
        _format_integers(variants, format_texts, keys_of, "AD"),
        _format_integers(variants, format_texts, keys_of, "GQ"),
    )


def _read_checked(
    variants: list[cyvcf2.Variant], declared: _Declared, header: VcfHeader, first: int, relative: str
):
    """_read_batch, or an InputFileError naming the line of the first record that fails to read on
    its own (found by reading the batch again record by record)."""
    try:
        return _read_batch(variants, declared)
    except Exception as error:
        scratch = _Declared(header, VcfCounts())
        failing = 0
        for i, variant in enumerate(variants):
            try:
                _read_batch([variant], scratch)
            except Exception:
                failing = i
                break
        raise bad_input.unexpected_error(relative, header.line_count + first + failing, error) from None


# --------------------------------------------------------------------------- vectorized per batch


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


def _alleles_and_phase(genotypes: list[np.ndarray | None], samples: int) -> tuple[np.ndarray, np.ndarray]:
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


def _set_aside_out_of_range(calls: _Calls, alt_counts, alleles, phase, first_record, counts) -> _Calls:
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
    return _Calls(calls.record[good], calls.sample[good], calls.allele[good])


def _batch_table(columns: _RecordColumns, header: VcfHeader, first_record: int, counts: VcfCounts):
    samples = len(header.samples)
    alleles, phase = _alleles_and_phase(columns.genotypes, samples)
    with_gt = np.array([g is not None for g in columns.genotypes], dtype=bool)
    has_ad = np.array([a is not None for a in columns.allele_depths], dtype=bool)

    def values(calls: _Calls, alt_counts: np.ndarray):
        return (
            _format_column(columns.depth, calls, samples)[:, 0],
            _format_column(columns.allele_depths, calls, samples),
            has_ad[calls.record],
            _format_column(columns.quality, calls, samples)[:, 0],
        )

    return _calls_table(
        columns.text, columns.alt_counts, alleles, phase, with_gt, values, header, first_record, counts
    )


def _calls_table(text, alt_counts, alleles, phase, with_gt, values, header, first_record, counts):
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
    for name in _TEXT_COLUMNS:
        column = text[name]
        if not isinstance(column, pa.Array):
            column = pa.array(column, pa.string() if name in _DICTIONARY_COLUMNS else types[name])
        if name in _DICTIONARY_COLUMNS:
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
    columns, pending, first = _RecordColumns.empty(), [], done + 1
    declared = _Declared(header, counts)
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
                columns = _RecordColumns.empty()
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
            declared = _Declared(self.header, scratch)
            variants = self._sites(block.sites)
            declared.check_format_counts(
                {
                    text: int(n)
                    for text, n in zip(block.formats, np.bincount(block.format_codes), strict=False)
                },
                {text: text.split(":") for text in block.formats},
            )
            text = dict(block.columns, info=declared.info_json(list(map(dict, map(_INFO, variants)))))
            alt_counts = block.alt_counts
            with_gt = np.ones(len(variants), dtype=bool)

            def values(calls: _Calls, alt_counts: np.ndarray):
                return vcf_text.call_values(block, calls.record, calls.sample, alt_counts)

            batch = _calls_table(
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


def _checked_table(columns: _RecordColumns, header: VcfHeader, first: int, counts: VcfCounts, relative: str):
    """_batch_table, or an InputFileError naming the line of the first record that fails on its own
    (the batch's first line if none does): found by re-reading the batch record by record."""
    try:
        return _batch_table(columns, header, first, counts)
    except InputFileError:
        raise
    except Exception as error:
        line = header.line_count + first + _first_failing(columns, header)
        raise bad_input.unexpected_error(relative, line, error) from None


def _first_failing(columns: _RecordColumns, header: VcfHeader) -> int:
    for i in range(len(columns)):
        one = _RecordColumns(
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
