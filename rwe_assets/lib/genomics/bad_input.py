"""Clear errors for VCFs htslib cannot read: which file, which line, what was expected.

htslib reports problems on stderr and cyvcf2 raises a bare Exception without the line, so when a read
fails we look at the file ourselves (only then, so the fast path pays nothing) and say what is wrong.
Messages name positions and counts, never values from the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from rwe_assets.errors import InputFileError
from rwe_assets.lib.genomics.header import CHROM_LINE_COLUMNS

_GZIP_MAGIC = b"\x1f\x8b"
_BCF_MAGIC = b"BCF\x02"  # then the minor version byte and the header text's length (uint32, little-endian)
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_SCAN_CHUNK = 1 << 20


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _is_bgzf(path: Path) -> bool:
    """BGZF: a gzip member whose extra field holds the 'BC' subfield (bytes 12-13)."""
    with open(path, "rb") as handle:
        start = handle.read(16)
    return start[:2] == _GZIP_MAGIC and start[3] & 4 != 0 and start[12:14] == b"BC"


def _open_content(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def is_bcf(path: Path) -> bool:
    """BCF content (BGZF-compressed or plain), whatever the file's name."""
    try:
        with _open_content(path) as content:
            return content.read(len(_BCF_MAGIC)) == _BCF_MAGIC
    except (EOFError, OSError, zlib.error):
        return False


def check_bgzf_start(path: Path, relative: str) -> None:
    if path.stat().st_size == 0:
        raise InputFileError(relative, "empty file: expected a VCF header", line=1)
    name = path.name.lower()
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix) and not _is_gzip(path):
            raise InputFileError(
                relative, f"file name ends {suffix} but the content is not gzip/BGZF", line=1
            )
    if name.endswith(".bcf") and not is_bcf(path):
        raise InputFileError(relative, "file name ends .bcf but the content is not BCF", line=1)


def check_bgzf_end(path: Path, relative: str, lines_read: int) -> None:
    """A BGZF file cut at a block boundary reads without error but lacks the end-of-file block
    (htslib only warns): that is a truncated file too."""
    if not _is_bgzf(path):
        return
    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - len(_BGZF_EOF), 0))
        if handle.read() != _BGZF_EOF:
            raise InputFileError(
                relative,
                f"truncated BGZF: the data ends after line {lines_read} without the BGZF end-of-file block",
                line=lines_read + 1,
            )


def _lines(path: Path):
    """(line number, bytes) of the decompressed content; a truncated archive raises EOFError."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as content:
        yield from enumerate(content, start=1)


def physical_header(path: Path) -> str:
    """The header lines as they are in the file (htslib's own copy adds lines, e.g. FILTER PASS); for
    a BCF, the header text it stores."""
    if is_bcf(path):
        return _bcf_header(path)
    lines = []
    for _, raw in _lines(path):
        if not raw.startswith(b"#"):
            break
        lines.append(raw.decode("utf-8", "replace"))
        if raw.startswith(b"#CHROM"):
            break
    return "".join(lines)


def _bcf_header(path: Path) -> str:
    with _open_content(path) as content:
        start = content.read(len(_BCF_MAGIC) + 5)
        text = content.read(int.from_bytes(start[-4:], "little"))
    text = text.rstrip(b"\x00").decode("utf-8", "replace")
    return text if text.endswith("\n") else text + "\n"


def _decompression_problem(path: Path) -> str | None:
    """The error reading the whole decompressed content raises, if any."""
    try:
        with _open_content(path) as content:
            while content.read(_SCAN_CHUNK):
                pass
    except (EOFError, OSError, zlib.error) as error:
        return type(error).__name__
    return None


def _bcf_error(relative: str, line: int, what: str, error: Exception) -> InputFileError:
    return InputFileError(relative, f"htslib could not parse the BCF {what} ({_short(error)})", line=line)


def _scan_to(path: Path, wanted: int) -> tuple[int, bytes | None, str | None]:
    """(last line read, the wanted line or None, a decompression problem or None). The whole file is
    read: htslib stops at the first damaged BGZF block, which may hold lines before the damage."""
    last, found = 0, None
    try:
        for number, raw in _lines(path):
            last = number
            if number == wanted:
                found = raw
    except (EOFError, OSError, zlib.error) as error:
        return last, found, type(error).__name__
    return last, found, None


def header_error(path: Path, relative: str, error: Exception) -> InputFileError:
    """Why htslib rejected the header: a truncated archive, no #CHROM line, or a bad #CHROM line."""
    if is_bcf(path):
        problem = _decompression_problem(path)
        if problem:
            return InputFileError(
                relative, f"truncated or corrupt compressed data in the header ({problem})", line=1
            )
        return _bcf_error(relative, 1, "header", error)
    last, problem = 0, None
    try:
        for number, raw in _lines(path):
            last = number
            if raw.startswith(b"#CHROM"):
                return _chrom_line_error(relative, number, raw)
            if not raw.startswith(b"##"):
                return InputFileError(
                    relative,
                    "expected the #CHROM header line (column names and samples) after the ## meta lines, "
                    "found a data line",
                    line=number,
                )
    except (EOFError, OSError, zlib.error) as decompress_error:
        problem = type(decompress_error).__name__
    if problem:
        return InputFileError(
            relative, f"truncated or corrupt compressed data in the header ({problem})", line=last + 1
        )
    return InputFileError(
        relative, f"expected the #CHROM header line, found the end of the file ({error})", line=last + 1
    )


def _chrom_line_error(relative: str, number: int, raw: bytes) -> InputFileError:
    columns = raw.rstrip(b"\r\n").decode("utf-8", "replace").split("\t")
    if tuple(columns[:8]) != CHROM_LINE_COLUMNS:
        return InputFileError(
            relative,
            f"expected the #CHROM line to start with {' '.join(CHROM_LINE_COLUMNS)} separated by tabs, "
            f"found {len(columns)} tab-separated columns",
            line=number,
        )
    return InputFileError(relative, "htslib rejected the header", line=number)


def record_error(path: Path, relative: str, line: int, samples: int, error: Exception) -> InputFileError:
    """Why htslib could not read data line `line`: the data ends early, or the line's columns do not
    match the header. A BCF record's line is the one it would have in the VCF text."""
    if is_bcf(path):
        problem = _decompression_problem(path)
        if problem:
            return InputFileError(
                relative,
                f"truncated or corrupt compressed data: it cannot be read at this record ({problem})",
                line=line,
            )
        return _bcf_error(relative, line, "record", error)
    last, raw, problem = _scan_to(path, line)
    if problem:
        return InputFileError(
            relative,
            f"truncated or corrupt compressed data: it cannot be read past line {last} ({problem})",
            line=line,
        )
    if raw is None:
        return InputFileError(relative, f"unexpected end of data after line {last}", line=last + 1)
    columns = raw.rstrip(b"\r\n").split(b"\t")
    expected = 8 if samples == 0 else 9 + samples
    if len(columns) != expected and not (samples == 0 and len(columns) == 9):
        return InputFileError(
            relative,
            f"expected {expected} tab-separated columns (8 fixed + FORMAT + {samples} samples), "
            f"found {len(columns)}",
            line=line,
        )
    return InputFileError(relative, f"htslib could not parse the record ({_short(error)})", line=line)


def _short(error: Exception) -> str:
    # cyvcf2's messages name htslib's return codes, never the record's values
    return str(error).splitlines()[0][:160] if str(error) else type(error).__name__


def unexpected_error(relative: str, line: int, error: Exception) -> InputFileError:
    """Any other failure while reading the record on `line` (named by its type: no values)."""
    return InputFileError(relative, f"could not read the record ({type(error).__name__})", line=line)
