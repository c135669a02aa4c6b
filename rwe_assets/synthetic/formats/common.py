"""What every writer shares: the chunk context, row noise (unmapped codes, bad dates, broken rows)
and rendering a frame of strings as CSV lines."""

from __future__ import annotations

import csv
import io
import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from rwe_assets.synthetic.catalogue import Catalogue, Names
from rwe_assets.synthetic.clinical.timeline import Prepared, Timeline
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.identity import LabTests, Records
from rwe_assets.synthetic.membership import Membership
from rwe_assets.synthetic.population import Persons
from rwe_assets.synthetic.reference import Reference


@dataclass
class Piece:
    """Lines of one landing file produced by one chunk (no header), and what they hold."""

    data: bytes
    rows: int
    malformed: int = 0
    invalid_date: int = 0
    unmapped: int = 0


@dataclass
class Chunk:
    """Everything the writers need about one chunk of persons."""

    seed: int
    index: int  # chunk number, global
    batch: str
    first_in_batch: bool
    persons: Persons
    membership: Membership
    prepared: Prepared
    timeline: Timeline
    records: dict[str, Records]
    lab: LabTests
    catalogue: Catalogue
    names: Names
    config: NoiseConfig
    reference: Reference
    encounter_ids: np.ndarray
    rng: np.random.Generator
    vcf_name: str = ""
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class Masks:
    malformed: np.ndarray
    invalid: np.ndarray
    unmapped: np.ndarray


def masks(
    rng: np.random.Generator, n: int, config: NoiseConfig, *, codes: bool = True, dates: bool = True
) -> Masks:
    draws = rng.random((n, 3))
    malformed = draws[:, 0] < config.malformed_row_share
    invalid = ~malformed & (draws[:, 1] < config.invalid_date_share) if dates else np.zeros(n, dtype=bool)
    unmapped = ~malformed & (draws[:, 2] < config.unmapped_code_share) if codes else np.zeros(n, dtype=bool)
    return Masks(malformed, invalid, unmapped)


def no_masks(n: int) -> Masks:
    empty = np.zeros(n, dtype=bool)
    return Masks(empty, empty, empty)


def local_code(code: str, prefix: str) -> str:
    """A site's own code for a catalogue code: stable, and never a real code of any vocabulary."""
    return f"{prefix}{zlib.crc32(code.encode()) % 1_000_000:06d}"


def localize(values: pl.Series, mask: np.ndarray, prefix: str) -> pl.Series:
    """Replace the values under `mask` by local codes."""
    if not mask.any():
        return values
    mapping = {
        v: local_code(v, prefix) for v in values.filter(pl.Series(mask)).unique().to_list() if v is not None
    }
    replaced = values.replace_strict(mapping, default=values, return_dtype=pl.String)
    return pl.select(pl.when(pl.lit(pl.Series(mask))).then(replaced).otherwise(values)).to_series()


def corrupt_dates(values: pl.Series, mask: np.ndarray, compact: bool = False) -> pl.Series:
    """Month 13: a date no parser accepts (YYYY-13-DD..., or YYYY13DD for compact dates)."""
    if not mask.any():
        return values
    if compact:
        bad = pl.concat_str([values.str.slice(0, 4), pl.lit("13"), values.str.slice(6)])
    else:
        bad = pl.concat_str([values.str.slice(0, 5), pl.lit("13"), values.str.slice(7)])
    return pl.select(
        pl.when(pl.lit(pl.Series(mask)) & (values.str.len_chars() >= 8)).then(bad).otherwise(values)
    ).to_series()


def columns_frame(columns: list[str], values: dict, height: int) -> pl.DataFrame:
    """A frame of `columns` in that order: a Series as given, any other value (a string, '' when
    absent) repeated `height` times."""
    data = {}
    for name in columns:
        value = values.get(name, "")
        data[name] = (
            value if isinstance(value, pl.Series) else pl.repeat(value, height, eager=True, dtype=pl.String)
        )
    return pl.DataFrame(data)


def csv_lines(frame: pl.DataFrame, quote_style: str = "necessary") -> bytes:
    """Rows as CSV lines (LF, no header); quote_style 'never' writes one-column JSON lines raw."""
    if frame.height == 0:
        return b""
    if quote_style == "necessary":
        # polars quotes an empty string ("") to tell it from a null; sources write empty fields bare
        frame = frame.with_columns(pl.col(pl.String).replace("", None))
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, quote_style=quote_style, line_terminator="\n")
    return buffer.getvalue()


def render_csv(frame: pl.DataFrame, m: Masks, quote_style: str = "necessary") -> Piece:
    """Good rows as CSV; malformed rows after them, each missing its last field (a ragged row the
    raw layer quarantines). quote_style 'never' writes every field bare (Synthea's CSV: the caller
    has taken out the commas)."""
    broken = np.flatnonzero(m.malformed)
    if quote_style == "never":
        good = frame.filter(pl.Series(~m.malformed)) if len(broken) else frame
        data = csv_lines(good, "never")
        if len(broken):
            data += csv_lines(frame[broken.tolist()].select(frame.columns[:-1]), "never")
    elif len(broken):
        keep = pl.Series(~m.malformed)
        good = frame.filter(keep)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for row in frame[broken.tolist()].iter_rows():
            writer.writerow(list(row)[:-1])
        data = csv_lines(good) + text.getvalue().encode("utf-8")
    else:
        data = csv_lines(frame)
    return Piece(
        data,
        frame.height,
        int(m.malformed.sum()),
        int(m.invalid.sum()),
        int(m.unmapped.sum()),
    )


def csv_header(columns: list[str], quoted: bool = False) -> bytes:
    if quoted:
        return (",".join(f'"{c}"' for c in columns) + "\n").encode()
    return (",".join(columns) + "\n").encode()


def json_text(values: pl.Series) -> pl.Series:
    """Escape strings for a JSON string literal (backslash, quote, control characters)."""
    return (
        values.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
    )


def optional(values) -> pl.Series:
    """Strings with '' as null: an element a template leaves out."""
    series = values if isinstance(values, pl.Series) else pl.Series(np.asarray(values).astype(str))
    return series.cast(pl.String).replace("", None)
