"""CSV files: header checks, DuckDB's strict read_csv parsed once into a temp table (spilling past
CSV_MEMORY_LIMIT), then streamed to Delta with physical line numbers; rejected rows to the quarantine."""

from __future__ import annotations

import contextlib
import csv
import errno
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest.model import PROVENANCE_COLUMNS, PROVENANCE_FIELDS, package
from rwe_assets.lib.raw_ingest.quarantine import _quarantine_table, _write_quarantine
from rwe_assets.lib.raw_ingest.scan import open_decompressed
from rwe_assets.lib.sql_text import quote_literal

# DuckDB reads an empty field as NULL unless told another null string: raw keeps "" as "".
_NO_NULL_STRING = "\x00rwe-no-null\x00"

# DuckDB's CSV reject error types -> our reason codes.
_CSV_REASONS = {
    "MISSING COLUMNS": "MISSING_COLUMNS",
    "TOO MANY COLUMNS": "TOO_MANY_COLUMNS",
    "INVALID ENCODING": "INVALID_ENCODING",
    "INVALID UNICODE": "INVALID_ENCODING",
    "UNQUOTED VALUE": "UNQUOTED_VALUE",
    "LINE SIZE OVER MAXIMUM": "LINE_TOO_LONG",
}


def read_header(path: Path, relative: str, encoding: str) -> list[str]:
    cap = package().MAX_LINE_BYTES
    with open_decompressed(path) as content:
        first = content.readline(cap + 1)
    if len(first) > cap:
        raise InputFileError(relative, f"LINE_TOO_LONG: header line longer than {cap >> 20} MiB", line=1)
    try:
        text = first.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputFileError(
            relative,
            f"header is not valid {encoding} (byte {error.start}); set the source's encoding",
            line=1,
        ) from None
    text = text.lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise InputFileError(relative, "expected a header line, found an empty line", line=1)
    return next(csv.reader([text]))


def check_header(header: list[str], required: tuple[str, ...], relative: str) -> None:
    """A header must name every required column once; names are compared case-insensitively
    because Delta column names are."""
    lowered = [name.lower() for name in header]
    empty = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if empty:
        raise InputFileError(relative, f"header has unnamed columns at positions {empty}", line=1)
    repeated = [i + 1 for i, name in enumerate(lowered) if lowered.count(name) > 1]
    if repeated:
        # positions, not names: a file sent without its header has a data row here (a name, an SSN)
        raise InputFileError(
            relative, f"header names a column more than once at positions {repeated}", line=1
        )
    reserved = sorted(set(lowered) & {c.lower() for c in PROVENANCE_COLUMNS})
    if reserved:
        raise InputFileError(
            relative, f"header uses reserved provenance column names: {', '.join(reserved)}", line=1
        )
    missing = [name for name in required if name.lower() not in lowered]
    if missing:
        raise InputFileError(
            relative,
            f"header does not match the source's schema: expected columns {', '.join(missing)}, "
            f"found {len(header)} columns without them",
            line=1,
        )


def line_numbers(good_before: int, count: int, skipped_lines: np.ndarray) -> np.ndarray:
    """Physical line numbers of the next `count` good records, `good_before` good records having
    come before them. Data starts on line 2 (line 1 is the header).

    `skipped_lines` (sorted) are lines that hold no good record: rejected rows and blank lines. The
    k-th good record (0-based) sits on the smallest line L with L - 2 - #(skipped lines < L) = k,
    found for a whole batch at once with searchsorted.
    """
    base = np.arange(good_before, good_before + count, dtype=np.int64) + 2
    if len(skipped_lines) == 0:
        return base
    thresholds = skipped_lines - np.arange(len(skipped_lines), dtype=np.int64)
    return base + np.searchsorted(thresholds, base, side="right")


def _ingest_csv(lake_dir, source, path, scan, provenance, result) -> None:
    entity = source.entity_for_file(path.name)
    if entity is None:
        expected = "; ".join(f"{e.name}: {' '.join(e.files)}" for e in source.entities)
        raise InputFileError(
            result.relative_path, f"file name matches no entity of source {source.name} ({expected})"
        )
    header = read_header(path, result.relative_path, source.encoding)
    check_header(header, entity.required_columns, result.relative_path)
    target = lake.table_path(lake_dir, "raw", source.name, entity.name)
    spill_dir = lake.work_dir(lake_dir, "ingest")
    con = _csv_connection(spill_dir)
    try:
        _parse(con, path, header, source.encoding, result.relative_path)
        rejects = _csv_rejects(con)
        # line numbers skip blank lines and rejected rows, all known before the first row is written
        blank = np.array(scan.blank_lines, dtype=np.int64)
        skipped = np.union1d(blank, np.array([r[0] for r in rejects], dtype=np.int64))
        stored = con.execute("SELECT count(*) FROM parsed").fetchone()[0]
        lake.replace_file_rows(target, _parsed_batches(con, provenance, skipped), provenance.file_sha256)
    except (
        OSError,
        duckdb.IOException,
    ) as error:  # a full disk while spilling or writing: not the file's fault
        code = getattr(error, "errno", None) or errno.EIO
        raise OSError(
            code,
            f"{result.relative_path}: could not write its rows ({error}); not recorded, a rerun reads it again",
        ) from error
    finally:
        con.close()  # DuckDB deletes its spill files
        with contextlib.suppress(OSError):
            spill_dir.rmdir()
    result.rows_stored = {entity.name: stored}
    quarantined = _csv_quarantine_rows(source.name, entity.name, rejects, provenance)
    _write_quarantine(lake_dir, quarantined, provenance.file_sha256)
    result.rows_quarantined = quarantined.num_rows
    result.records_read = stored + quarantined.num_rows


def _csv_connection(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """The file is parsed once into a temp table, which spills past CSV_MEMORY_LIMIT into the lake's
    private scratch dir (raw rows are PII: never the system temp dir)."""
    spill_dir.mkdir(parents=True, exist_ok=True)  # DuckDB makes only the last level; owner-only umask
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")  # line numbers rely on file order
    con.execute(f"SET memory_limit = '{package().CSV_MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = {quote_literal(str(spill_dir))}")
    return con


def _parse(con, path: Path, header: list[str], encoding: str, relative: str) -> None:
    """Every good row into temp table `parsed` in file order, the rejected ones into reject_errors. A
    file read once: rejected rows' lines must be known before line numbers are given, and streaming
    the rows out as they were parsed meant reading and writing a file with rejects twice."""
    params = {
        "path": str(path),
        "columns": {name: "VARCHAR" for name in header},
        "encoding": encoding,
        "nullstr": _NO_NULL_STRING,
        "max_line": package().MAX_LINE_BYTES,
    }
    try:
        con.execute(
            """
            CREATE TEMP TABLE parsed AS SELECT * FROM read_csv($path, header = true, auto_detect = false,
                columns = $columns, delim = ',', quote = '"', escape = '"', nullstr = $nullstr,
                allow_quoted_nulls = false, strict_mode = true, store_rejects = true,
                encoding = $encoding, compression = 'auto', max_line_size = $max_line)
            """,
            params,
        )
    except duckdb.OutOfMemoryException:
        raise  # the machine's limit, not the file's fault
    except duckdb.IOException as error:
        if any(text in str(error) for text in _MACHINE_IO_FAULTS):
            raise  # the scratch disk (the parse spills), not the file: a rerun must read the file again
        raise _csv_error(error, relative) from None
    except duckdb.Error as error:
        raise _csv_error(error, relative) from None


# IO errors of the machine, not of the file: the file is not recorded as failed (a rerun reads it again)
_MACHINE_IO_FAULTS = ("No space left on device", "Could not write", "Disk quota exceeded")


def _parsed_batches(con, provenance, skipped: np.ndarray) -> pa.RecordBatchReader:
    """The parsed rows in file order with their provenance columns, as Arrow record batches."""
    reader = con.execute("SELECT * FROM parsed").to_arrow_reader(package().CSV_BATCH_ROWS)
    schema = pa.schema(list(reader.schema) + PROVENANCE_FIELDS)

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in reader:
            numbers = package().line_numbers(done, batch.num_rows, skipped)
            done += batch.num_rows
            columns = batch.columns + [column for _, column in provenance.columns(numbers)]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _csv_rejects(con) -> list[tuple]:
    """One row per rejected line: (line, column name, error type, original line text). An error of the
    whole line (LINE SIZE OVER MAXIMUM) has no column index: it sorts first."""
    return con.execute(
        """
        SELECT line, arg_min(column_name, coalesce(column_idx, -1)),
            arg_min(error_type, coalesce(column_idx, -1)), any_value(csv_line)
        FROM reject_errors GROUP BY line ORDER BY line
        """
    ).fetchall()


def _csv_quarantine_rows(source, entity, rejects, provenance) -> pa.Table:
    rows = []
    for line, column, error_type, text in rejects:
        reason = _CSV_REASONS.get(str(error_type), str(error_type).replace(" ", "_"))
        rows.append((line, reason, column, f"{str(error_type).lower()} at line {line}", text))
    return _quarantine_table(source, entity, rows, provenance)


def _csv_error(error: Exception, relative: str) -> InputFileError:
    message = str(error)
    line = re.search(r"CSV Error on Line: (\d+)", message)
    first = message.splitlines()[0] if message else type(error).__name__
    # DuckDB quotes the offending line in its message: keep only the first line, which does not.
    first = re.sub(r"Original Line:.*", "", first)
    return InputFileError(relative, f"unreadable CSV: {first}", line=int(line.group(1)) if line else None)
