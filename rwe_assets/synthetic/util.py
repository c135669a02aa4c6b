"""Small vectorized helpers: seeded random streams, ids, date and number formatting."""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

from rwe_assets.synthetic.catalogue import day_number
from rwe_assets.synthetic.config import CLAIMS_START, DATA_START, EXTRACT_DATE

DAY_START = day_number(DATA_START)
DAY_CLAIMS = day_number(CLAIMS_START)
DAY_END = day_number(EXTRACT_DATE) - 1  # last day with data
NEVER = np.int32(2**30)  # a day that never comes (no death, no onset)
SECONDS_PER_DAY = 86_400
YEAR = 365.25

# Stream names: each random stream of a chunk is seeded by (seed, stream, chunk), so adding draws to
# one stream never shifts another and a chunk's output does not depend on other chunks.
_STREAMS = (
    "population",
    "membership",
    "identity",
    "clinical",
    "render",
    "genome",
    "reference",
    "noise",
)


def stream(seed: int, name: str, chunk: int = 0) -> np.random.Generator:
    key = _STREAMS.index(name) if name in _STREAMS else zlib.crc32(name.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key, chunk])))


def uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """n random UUID-shaped ids (8-4-4-4-12 lower-case hex)."""
    if n == 0:
        return pl.Series([], dtype=pl.String)
    raw = np.frombuffer(rng.bytes(16 * n).hex().encode("ascii"), dtype=np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8] = raw[:, 0:8]
    out[:, 9:13] = raw[:, 8:12]
    out[:, 14:18] = raw[:, 12:16]
    out[:, 19:23] = raw[:, 16:20]
    out[:, 24:36] = raw[:, 20:32]
    return pl.Series(out.view("S36").ravel()).cast(pl.String)


def hex_ids(rng: np.random.Generator, n: int, length: int, prefix: str = "", upper: bool = True) -> pl.Series:
    """n random hex strings of `length` characters after `prefix`."""
    if n == 0:
        return pl.Series([], dtype=pl.String)
    width = (length + 1) // 2
    text = rng.bytes(width * n).hex()
    if upper:
        text = text.upper()
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(n, 2 * width)[:, :length]
    ids = pl.Series(np.ascontiguousarray(raw).view(f"S{length}").ravel()).cast(pl.String)
    return (prefix + ids) if prefix else ids


def padded(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded decimal strings, as a numpy array (empty-safe)."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return np.array([], dtype=f"U{width}")
    return np.char.zfill(values.astype(str), width)


def digits(values: np.ndarray, width: int) -> pl.Series:
    """Non-negative integers as zero-padded decimal strings."""
    return pl.Series(np.asarray(values, dtype=np.int64)).cast(pl.String).str.zfill(width)


def iso_dates(days: np.ndarray) -> pl.Series:
    """Day numbers as YYYY-MM-DD; NEVER or negative day numbers give empty strings."""
    days = np.asarray(days, dtype=np.int64)
    valid = (days >= -50_000) & (days < NEVER)
    series = pl.Series(np.where(valid, days, 0).astype(np.int32)).cast(pl.Date).dt.strftime("%Y-%m-%d")
    return pl.select(pl.when(pl.lit(pl.Series(valid))).then(series).otherwise(pl.lit(""))).to_series()


def compact_dates(days: np.ndarray) -> pl.Series:
    """Day numbers as YYYYMMDD (DE-SynPUF); NEVER gives an empty string."""
    days = np.asarray(days, dtype=np.int64)
    valid = (days >= -50_000) & (days < NEVER)
    series = pl.Series(np.where(valid, days, 0).astype(np.int32)).cast(pl.Date).dt.strftime("%Y%m%d")
    return pl.select(pl.when(pl.lit(pl.Series(valid))).then(series).otherwise(pl.lit(""))).to_series()


def iso_times(seconds: np.ndarray) -> pl.Series:
    """Seconds since the epoch as YYYY-MM-DDTHH:MM:SSZ (UTC), as Synthea and FHIR bulk write them;
    negative values (no time) give empty strings."""
    seconds = np.asarray(seconds, dtype=np.int64)
    valid = seconds >= 0
    stamps = pl.from_epoch(pl.Series(np.where(valid, seconds, 0)), time_unit="s")
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pl.select(pl.when(pl.lit(pl.Series(valid))).then(text).otherwise(pl.lit(""))).to_series()


def fixed(values: np.ndarray, decimals: int) -> pl.Series:
    """Numbers rounded to `decimals` places, written without exponent (decimals 0: integers)."""
    values = np.asarray(values, dtype=np.float64)
    if decimals <= 0:
        return pl.Series(np.rint(values).astype(np.int64)).cast(pl.String)
    scaled = np.rint(values * 10**decimals).astype(np.int64)
    negative = pl.Series(scaled < 0)
    scaled = np.abs(scaled)
    whole = pl.Series(scaled // 10**decimals).cast(pl.String)
    frac = pl.Series(scaled % 10**decimals).cast(pl.String).str.zfill(decimals)
    text = whole + "." + frac
    return pl.select(pl.when(pl.lit(negative)).then("-" + text).otherwise(text)).to_series()


def integers(values: np.ndarray) -> pl.Series:
    """Integers as decimal strings."""
    return pl.Series(np.asarray(values).astype(np.int64)).cast(pl.String)


def money(values: np.ndarray) -> pl.Series:
    return fixed(values, 2)


def take(strings, idx: np.ndarray, missing: str = "") -> pl.Series:
    """strings[idx] as a polars Series; idx -1 gives `missing`."""
    table = pl.Series([*strings, missing], dtype=pl.String)
    idx = np.asarray(idx, dtype=np.int64)
    return table.gather(np.where(idx < 0, len(strings), idx))


def ages_at(birth: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Age in (fractional) years at a day."""
    return (np.asarray(day, dtype=np.float64) - birth) / YEAR


def group_rank(keys: np.ndarray) -> np.ndarray:
    """For a sorted key array: the 0-based position of each element within its run of equal keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    return np.arange(n) - run_start


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset) pairs: owner i repeated counts[i] times, with offsets 0..counts[i]-1."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, offset
