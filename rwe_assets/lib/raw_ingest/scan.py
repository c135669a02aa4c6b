"""Finding a batch's files and reading a file's bytes once: sha256, size, physical lines, blank lines."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from rwe_assets.errors import InputFileError
from rwe_assets.lib.raw_ingest.model import READ_CHUNK, FileScan, package


def batch_files(batch_path: Path) -> list[Path]:
    """The files of a batch in a stable order: a batch is a folder (walked recursively) or one file.

    Hidden files and marker files (names starting with '.' or '_') are not data. Symbolic links are
    listed (never followed: rglob does not descend into linked folders) so the ingest can refuse them
    with a reason.
    """
    if batch_path.is_file() or batch_path.is_symlink():
        return [batch_path]
    files = [
        p
        for p in batch_path.rglob("*")
        if (p.is_symlink() or p.is_file())
        and not any(part.startswith((".", "_")) for part in p.relative_to(batch_path).parts)
    ]
    return sorted(files)


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file's bytes (an empty file included)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def open_decompressed(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


EMPTY_FILE = "empty file: expected at least a header line"

# A newline followed by an empty line: the match ends the line before a blank one. (A pattern anchored
# with ^ would be tried at every byte; this one only at newlines, ten times faster.)
_BEFORE_BLANK_LINE = re.compile(rb"\n(?=\r?\n)")


class _LineCounter:
    """Counts physical lines and finds blank ones in a stream fed in chunks of any size."""

    def __init__(self):
        self.lines, self.blank, self._carry = 0, [], b""

    def feed(self, chunk: bytes) -> None:
        data = self._carry + chunk
        cut = data.rfind(b"\n") + 1
        complete, self._carry = data[:cut], data[cut:]
        if complete.startswith((b"\n", b"\r\n")):
            self.blank.append(self.lines + 1)
        seen, position = 0, 0
        for match in _BEFORE_BLANK_LINE.finditer(complete):
            seen += complete.count(b"\n", position, match.start())
            position = match.start()
            self.blank.append(self.lines + seen + 2)
        self.lines += complete.count(b"\n")

    def finish(self) -> tuple[int, tuple[int, ...]]:
        last_line = 1 if self._carry else 0  # a last line without a trailing newline
        blank_last = 1 if self._carry and not self._carry.strip(b"\r") else 0
        return self.lines + last_line, tuple(self.blank + ([self.lines + 1] if blank_last else []))


def scan_file(path: Path, relative: str) -> FileScan:
    """sha256 and size of the bytes on disk; physical line count and blank lines of the content.

    One streaming pass in bounded memory (two for gzip: the archive's bytes are hashed, its content is
    counted, so a truncated archive fails here, before anything is written).
    """
    digest, size, counter = hashlib.sha256(), 0, _LineCounter()
    compressed = path.name.lower().endswith(".gz")
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if not compressed:
                counter.feed(chunk)
    if size == 0:
        raise InputFileError(relative, EMPTY_FILE, line=1)
    if compressed:
        _count_gzip_lines(path, relative, counter)
    lines, blank = counter.finish()
    if lines == len(blank):
        raise InputFileError(relative, EMPTY_FILE, line=1)
    return FileScan(digest.hexdigest(), size, lines, blank)


def _count_gzip_lines(path: Path, relative: str, counter: _LineCounter) -> None:
    try:
        with gzip.open(path, "rb") as content:
            for chunk in iter(lambda: content.read(READ_CHUNK), b""):
                counter.feed(chunk)
    except (EOFError, OSError, zlib.error) as error:
        where = f"after line {counter.lines}" if counter.lines else "before the end of its first line"
        raise InputFileError(
            relative,
            f"truncated or corrupt gzip: the archive ends {where} ({type(error).__name__})",
            line=counter.lines + 1,
        ) from None


def hash_file(path: Path, relative: str, empty: str = "empty file: expected a VCF header") -> FileScan:
    """sha256 and size only, for a reader that counts lines itself: a VCF's lines are counted while
    cyvcf2 reads it, and its truncation is detected there (decompressing it twice would cost more
    than parsing it); NDJSON's by the block reader (ndjson.py). `empty`: the error for a 0-byte file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(READ_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    if size == 0:
        raise InputFileError(relative, empty, line=1)
    return FileScan(digest.hexdigest(), size, 0, ())


def _bounded_lines(stream, cap: int | None = None) -> Iterator[bytes | int]:
    """The lines of a binary stream; a line longer than `cap` bytes (default MAX_LINE_BYTES; its
    newline aside) yields its length instead, read through in chunks and never held whole."""
    cap = package().MAX_LINE_BYTES if cap is None else cap
    while line := stream.readline(cap + 1):
        if len(line) <= cap or line.endswith(b"\n"):
            yield line
            continue
        length = len(line)
        while (more := stream.readline(READ_CHUNK)) and not more.endswith(b"\n"):
            length += len(more)
        length += len(more.rstrip(b"\r\n")) if more else 0
        yield length
