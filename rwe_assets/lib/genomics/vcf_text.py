"""The VCF reader's text fast path: a block of whole data lines parsed with array operations.

htslib parses every FORMAT value of every sample; the calls need GT of every sample but DP, AD and GQ
only where a sample carries an ALT allele (about one cell in ten). So for plain and gzip/BGZF text,
a block of lines is split at its tabs with numpy, GT is decoded from the first bytes of each cell,
DP/AD/GQ are parsed for the call cells only (Arrow string kernels), and the eight fixed columns of
each line go through htslib on their own (a header without samples: CHROM to INFO parsed exactly as
when the file is read, including undeclared INFO keys).

A block is taken only when every line is one the fast path reads exactly as htslib does: the header's
column count; FORMAT starting with GT; every GT one or two single-character alleles (0-9 or .), a
haploid cell allowed in a diploid record (chrX of a male); after GT, only digits, ',', ':' and whole
'.' values, and no cell with more values than FORMAT keys (htslib rejects extra values, letters in
numbers and '1.5' in an Integer; it fills dropped ones, as in ./. alone); in the call cells, DP, AD
and GQ present, non-empty, at most 9 digits. Anything else (a malformed line, a Float or String
FORMAT value, '-3', 10/1) raises NotEligible: the caller reads that block and the rest of the file
with cyvcf2, which raises the same errors as before. rwe_assets_tests/lib/genomics/test_vcf_text.py
compares both paths on every test file and on a line breaking each rule. Known gap: a line where
some cells drop values and others carry exactly as many extra ones passes the per-line ':' count.
The CHROM..FILTER and FORMAT columns are taken from the text (POS and QUAL cast as htslib does).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_READ_BYTES = 8 << 20
_TAB, _NEWLINE, _COLON, _COMMA, _DOT, _SLASH, _PIPE = (ord(c) for c in "\t\n:,./|")
_INT32_MISSING = -(2**31)
_INT32_VECTOR_END = _INT32_MISSING + 1
_ALLELE_MISSING, _ALLELE_PAD = -1, -2
# Bytes allowed in a cell after its GT (tab and newline end cells, so reduceat over an empty cell
# tail reads them: they must count as allowed).
_NOT_ALLOWED_TABLE = bytes(0 if chr(i) in "0123456789,:.\t\n" else 1 for i in range(256))
_ALLELE_CHAR = np.zeros(256, bool)
_ALLELE_CHAR[list(b"0123456789.")] = True
_DOT_BEFORE = np.zeros(256, bool)
_DOT_BEFORE[list(b"\t:,/|")] = True
_DOT_AFTER = np.zeros(256, bool)
_DOT_AFTER[list(b"\t\n:,/|")] = True
_GT_END = np.zeros(256, bool)  # what may follow GT in a cell
_GT_END[list(b"\t\n:")] = True
_VALUE_KEYS = ("DP", "AD", "GQ")


class NotEligible(Exception):
    """The block holds something only htslib reads exactly; the caller falls back to cyvcf2."""


def open_text(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def line_blocks(handle, skip: int, lines: int, block_bytes: int = 2_000_000) -> Iterator[bytes]:
    """Blocks of whole lines after the first `skip` lines: about `block_bytes` each (cut at the last
    newline before), at most `lines` lines; each ends with a newline (one is added to a last line
    without it). Cuts are found with bytes.rfind/count, not a scan of every byte."""
    data, begin = b"", 0
    while piece := handle.read(_READ_BYTES):
        data = data[begin:] + piece
        begin = 0
        while skip and (newline := data.find(b"\n", begin)) >= 0:
            begin, skip = newline + 1, skip - 1
        if skip:
            data, begin = b"", 0
            continue
        while (end := _block_end(data, begin, block_bytes)) > begin:
            if data.count(b"\n", begin, end) > lines:
                end = _after_nth_newline(data, begin, end, lines)
            yield data[begin:end]
            begin = end
            if len(data) - begin < block_bytes:
                break
    rest = data[begin:]
    while rest and not skip:
        end = _after_nth_newline(rest, 0, len(rest), lines) if rest.count(b"\n") > lines else len(rest)
        block, rest = rest[:end], rest[end:]
        yield block if block.endswith(b"\n") else block + b"\n"


def _block_end(data: bytes, begin: int, block_bytes: int) -> int:
    """After the last newline within block_bytes of begin, or after the first one (a longer line)."""
    end = data.rfind(b"\n", begin, begin + block_bytes) + 1
    return end if end > begin else data.find(b"\n", begin) + 1


def _after_nth_newline(data: bytes, begin: int, end: int, n: int) -> int:
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8, end - begin, begin) == _NEWLINE)
    return begin + int(newlines[n - 1]) + 1


@dataclass
class TextBlock:
    """One block's lines, cut into what the call table needs."""

    sites: list[str]  # CHROM .. INFO of each line, for htslib
    formats: list[str]  # the distinct FORMAT texts
    format_codes: np.ndarray  # index into formats, per line
    columns: dict[
        str, pa.Array
    ]  # chrom, pos, id, ref, alt, qual, filter, format, as the cyvcf2 path reads them
    alt_counts: np.ndarray
    alleles: np.ndarray  # (lines, samples, ploidy) int16, padded with -2
    phase: np.ndarray  # (lines, samples) bool
    data: bytes
    starts: np.ndarray  # (lines, samples): first byte of each cell
    ends: np.ndarray  # (lines, samples): the tab or newline after each cell


def parse_block(data: bytes, samples: int) -> TextBlock:
    """The block's columns; NotEligible when a line is not one the fast path reads exactly."""
    buf = np.frombuffer(data, np.uint8)
    delimiters = np.flatnonzero(buf < 11)  # tab, newline, and any other control byte (then rejected)
    width = samples + 9
    if samples == 0 or len(delimiters) % width:
        raise NotEligible("column count")
    cuts = delimiters.reshape(-1, width)
    if (buf[cuts[:, -1]] != _NEWLINE).any() or (buf[cuts[:, :-1]] != _TAB).any():
        raise NotEligible("column count")
    line_starts = np.concatenate([[0], cuts[:-1, -1] + 1])
    starts, ends = cuts[:, 8:-1] + 1, cuts[:, 9:]
    columns, alt_counts = _fixed_columns(data, line_starts, cuts[:, :9])
    sites = _texts(data, line_starts, cuts[:, 7])
    encoded = columns["format"].dictionary_encode()
    formats, format_codes = encoded.dictionary.to_pylist(), encoded.indices.to_numpy()
    if any(not (t == "GT" or t.startswith("GT:")) for t in formats):
        raise NotEligible("FORMAT without GT first")
    padded = data + b"\n\n\n"  # the first four bytes of the last cell can be read
    alleles, phase, diploid, gt_end_byte = _genotypes(np.frombuffer(padded, np.uint8), starts)
    lines = _Lines(data, buf, cuts[:, 8], cuts[:, -1])
    lines.check_bytes(starts[diploid] + 1)
    lines.check_dots()
    expected = np.array([text.count(":") for text in formats], np.int64)[format_codes]
    lines.check_values_per_cell(expected, starts, np.where(diploid, 3, 1), ends, gt_end_byte)
    return TextBlock(sites, formats, format_codes, columns, alt_counts, alleles, phase, padded, starts, ends)


_FIXED = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", None, "format")


def _fixed_columns(data: bytes, line_starts: np.ndarray, cuts: np.ndarray) -> tuple[dict, np.ndarray]:
    """CHROM .. FILTER and FORMAT as Arrow columns, valued as htslib reads them: POS an integer,
    QUAL a float32 rounded from the double strtod gives ('.' null); an empty field is NotEligible."""
    begins = np.column_stack([line_starts, cuts[:, :-1] + 1])
    if (cuts - begins < 1).any():
        raise NotEligible("empty column")
    columns = {}
    try:
        for j, name in enumerate(_FIXED):
            if name:
                columns[name] = _spans(data, begins[:, j], cuts[:, j]).cast(pa.string())
        columns["pos"] = pc.cast(columns["pos"], pa.int64())
        qual = columns["qual"]
        columns["qual"] = pc.cast(
            pc.cast(pc.if_else(pc.equal(qual, "."), None, qual), pa.float64()), pa.float32()
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not UTF-8, not a number
        raise NotEligible("fixed column") from None
    alt = columns["alt"]
    commas = pc.count_substring(alt, ",").to_numpy(zero_copy_only=False)
    alt_counts = np.where(pc.equal(alt, ".").to_numpy(zero_copy_only=False), 0, commas + 1)
    return columns, alt_counts.astype(np.int32)


def _texts(data: bytes, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """data[start:end] of each pair as str, sliced by Arrow (no Python per line); the slices are the
    even items of a binary array whose offsets alternate start, end."""
    try:
        return _spans(data, starts, ends).cast(pa.large_string()).to_pylist()
    except pa.ArrowInvalid:  # not UTF-8
        raise NotEligible("text") from None


def _spans(data: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    if not len(starts):
        return pa.array([], pa.large_binary())
    offsets = np.empty(2 * len(starts), np.int64)
    offsets[0::2], offsets[1::2] = starts, ends
    spans = pa.Array.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return spans.take(np.arange(0, len(offsets), 2))


def _genotypes(padded: np.ndarray, starts: np.ndarray):
    """Alleles, phase, which cells are diploid and the byte after GT, from each cell's first four
    bytes."""
    b0, b1, b2, b3 = (padded.take(starts + k) for k in range(4))
    diploid = (b1 == _SLASH) | (b1 == _PIPE)
    after = np.where(diploid, b3, b1)
    ok = _GT_END[after] & _ALLELE_CHAR[b0] & (_ALLELE_CHAR[b2] | ~diploid)
    if not ok.all():
        raise NotEligible("genotype")
    alleles = np.empty((*starts.shape, 2 if diploid.any() else 1), np.int16)
    alleles[..., 0] = _allele(b0)
    if alleles.shape[2] == 2:  # a haploid cell (chrX of a male) in a diploid block ends with the pad
        alleles[..., 1] = np.where(diploid, _allele(b2), _ALLELE_PAD)
    return alleles, diploid & (b1 == _PIPE), diploid, after


def _allele(byte: np.ndarray) -> np.ndarray:
    return np.where(byte == _DOT, _ALLELE_MISSING, byte.astype(np.int16) - ord("0")).astype(np.int16)


class _Lines:
    """Checks of the sample part (after the FORMAT column) of each line."""

    def __init__(self, data: bytes, buf: np.ndarray, sample_starts: np.ndarray, line_ends: np.ndarray):
        self.data, self.buf = data, buf
        self.sample_starts, self.line_ends = sample_starts, line_ends

    def _per_line(self, values: np.ndarray, reduce=np.maximum) -> np.ndarray:
        bounds = np.stack([self.sample_starts, self.line_ends], axis=1).ravel()
        return reduce.reduceat(values, bounds)[0::2]

    def check_bytes(self, separators: np.ndarray) -> None:
        """Only digits , . : outside GT, whose separators ('/', '|') are at `separators`."""
        classes = np.frombuffer(bytearray(self.data.translate(_NOT_ALLOWED_TABLE)), np.uint8)
        classes[separators] = 0
        if self._per_line(classes).any():
            raise NotEligible("bytes")

    def check_dots(self) -> None:
        """'.' only as a whole value (htslib rejects 1.5, 3. and .5 in an Integer)."""
        buf = self.buf
        dots = np.flatnonzero(buf == _DOT)
        dots = dots[dots > self.sample_starts[np.searchsorted(self.line_ends, dots)]]
        if len(dots) and not (_DOT_BEFORE[buf[dots - 1]] & _DOT_AFTER[buf[dots + 1]]).all():
            raise NotEligible("dot inside a value")

    def check_values_per_cell(self, expected, starts, gt_lengths, ends, gt_end_byte) -> None:
        """No cell with more values than FORMAT keys (htslib rejects it; it fills dropped ones, as in
        ./. alone). A line with exactly one value per key in all its cells passes on its ':' count;
        the others (dropped values) are counted cell by cell."""
        colons = np.fromiter(
            map(self.data.count, repeat(b":"), self.sample_starts.tolist(), self.line_ends.tolist()),
            np.int64,
            len(expected),
        )
        if (colons > expected * starts.shape[1]).any():
            raise NotEligible("values per cell")
        dropped = (gt_end_byte != _COLON) & (expected[:, None] > 0)
        uneven = np.flatnonzero((colons < expected * starts.shape[1]) | dropped.any(axis=1))
        if not len(uneven):
            return
        gt_ends = (starts + gt_lengths)[uneven]
        bounds = np.stack([gt_ends, ends[uneven]], axis=2).ravel()
        per_cell = np.add.reduceat((self.buf == _COLON).view(np.uint8), bounds)[0::2]
        per_cell = np.where(bounds[0::2] == bounds[1::2], 0, per_cell).reshape(gt_ends.shape)
        if (per_cell > expected[uneven, None]).any():
            raise NotEligible("values per cell")


# --------------------------------------------------------------------------- DP, AD, GQ of the calls


def call_values(block: TextBlock, record: np.ndarray, sample: np.ndarray, alt_counts: np.ndarray):
    """(depth, allele depths (calls, width), has AD, GQ) of the given calls, as the cyvcf2 path gives
    them: int32 with htslib's missing value; AD rows padded with its vector end."""
    cells, cell_of_call = np.unique(record * block.starts.shape[1] + sample, return_inverse=True)
    rows, cols = np.divmod(cells, block.starts.shape[1])
    parts = pc.split_pattern(_spans(block.data, block.starts[rows, cols], block.ends[rows, cols]), ":")
    formats = [text.split(":") for text in block.formats]
    codes = block.format_codes[rows]
    values = {key: _field(parts, codes, formats, key, len(cells)) for key in _VALUE_KEYS}
    (depth, _), (ad, ad_width), (quality, _) = values["DP"], values["AD"], values["GQ"]
    has_ad = np.array([("AD" in keys) for keys in formats], bool)[block.format_codes[record]]
    needed = int((alt_counts[record][has_ad] + 1).max(initial=0))
    if ad_width < needed:  # the cyvcf2 path's width then depends on other cells
        raise NotEligible("AD shorter than the alleles")
    return depth[cell_of_call, 0], ad[cell_of_call], has_ad, quality[cell_of_call, 0]


def _field(parts: pa.ListArray, codes: np.ndarray, formats: list[list[str]], key: str, cells: int):
    """(cells, width) int32 of one FORMAT key (missing where a record's FORMAT lacks it), and the
    width (most values in a cell)."""
    out_values = [np.full((cells, 1), _INT32_MISSING, np.int32)]
    width = 1
    for code, keys in enumerate(formats):
        if key not in keys:
            continue
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        try:
            mine = parts if len(rows) == cells else parts.take(rows)
            tokens = pc.list_element(mine, keys.index(key))
        except pa.ArrowInvalid:  # a call cell without this value: htslib's filling is not done here
            raise NotEligible("dropped value in a call") from None
        if key != "AD":  # one value (a list such as 5,6 fails the integer cast: the cyvcf2 path reads it)
            out_values.append((rows, _integers(tokens)[:, None]))
            continue
        items = pc.split_pattern(tokens, ",")
        numbers = _integers(pc.list_flatten(items))
        lengths = pc.list_value_length(items).to_numpy(zero_copy_only=False)
        width = max(width, int(lengths.max(initial=1)))
        matrix = np.full((len(rows), width), _INT32_VECTOR_END, np.int32)
        column = np.arange(len(numbers)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        matrix[np.repeat(np.arange(len(rows)), lengths), column] = numbers
        out_values.append((rows, matrix))
    result = np.full((cells, width), _INT32_MISSING, np.int32)
    result[:, 1:] = _INT32_VECTOR_END
    for rows, matrix in out_values[1:]:
        result[rows, : matrix.shape[1]] = matrix
        result[rows, matrix.shape[1] :] = _INT32_VECTOR_END
    return result, width


def _integers(tokens: pa.Array) -> np.ndarray:
    """Digits (at most 9) or '.'; anything else (an empty value, a longer number) is NotEligible."""
    text = tokens.cast(pa.large_string())
    lengths = pc.binary_length(text).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths.min() == 0 or lengths.max() > 9):
        raise NotEligible("integer")
    missing = pc.equal(text, ".")
    try:
        numbers = pc.cast(pc.if_else(missing, None, text), pa.int32())
    except pa.ArrowInvalid:
        raise NotEligible("integer") from None
    return numbers.fill_null(_INT32_MISSING).to_numpy(zero_copy_only=False).astype(np.int32)
