"""The base population an update batch changes, read back from its landing files and truth
(nothing is re-simulated), and what every source's changes share: landing lines read column-wise,
the persons to change, each person's latest row, and the rows of truth/update_changes.csv."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rwe_assets.errors import ConfigError
from rwe_assets.lib.truth_files import PERSON_RECORDS, PERSONS, REPORT, TRUTH_DIR
from rwe_assets.synthetic.landing_files import LANDING_DIR

FHIR_DAY = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Base:
    dir: Path
    report: dict
    persons: pl.DataFrame  # TRUE_PERSON_ID, DEATH_DATE
    records: pl.DataFrame  # SOURCE, SOURCE_PERSON_ID, TRUE_PERSON_ID, IS_DUPLICATE

    @property
    def compress(self) -> bool:
        return bool(self.report["compress"])

    def files(self, source: str, name: str) -> list[Path]:
        """The landing files of `source` named `name` (plain or .gz), in batch order."""
        folder = self.dir / LANDING_DIR / source
        return sorted(folder.glob(f"*/{name}")) + sorted(folder.glob(f"*/{name}.gz"))


def read_base(base_dir: Path) -> Base:
    report_path = base_dir / TRUTH_DIR / REPORT
    if not report_path.is_file():
        raise ConfigError(f"generate_update: no truth/report.json in {base_dir}: not a generate() output")
    report = json.loads(report_path.read_text())
    persons = pl.read_csv(
        base_dir / TRUTH_DIR / PERSONS, columns=["TRUE_PERSON_ID", "DEATH_DATE"], infer_schema=False
    )
    records = pl.read_csv(
        base_dir / TRUTH_DIR / PERSON_RECORDS,
        columns=["SOURCE", "SOURCE_PERSON_ID", "TRUE_PERSON_ID", "IS_DUPLICATE"],
        infer_schema=False,
    )
    return Base(base_dir, report, persons, records)


def landing_lines(paths: list[Path], header: bool = True) -> pl.Series:
    """Data lines of text files as written (a CSV header dropped), read by polars as one field per
    line (no separator, no quoting): no Python string per line."""
    parts = []
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if header:
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        if not data.strip():
            continue
        frame = pl.read_csv(
            data,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            new_columns=["line"],
            infer_schema=False,
        )
        parts.append(frame["line"].drop_nulls())
    return pl.concat(parts) if parts else pl.Series("line", [], dtype=pl.String)


def csv_rows(paths: list[Path], columns: list[str]) -> pl.DataFrame:
    """Well-formed rows of CSV files as text columns, in file order (malformed rows, which raw
    quarantines, are left out: re-sending them would correct them)."""
    lines = landing_lines(paths)
    ok = lines.str.count_matches(",", literal=True) == len(columns) - 1
    return (
        lines.filter(ok)
        .str.split(",")
        .list.to_struct(fields=columns)
        .struct.unnest()
        .with_row_index("_order")
    )


def to_lines(frame: pl.DataFrame, columns: list[str]) -> bytes:
    if frame.is_empty():
        return b""
    text = frame.select(pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=","))
    return ("\n".join(text.to_series().to_list()) + "\n").encode()


def shifted(column: str, **duration) -> pl.Expr:
    """Shift 'YYYY-MM-DDTHH:MM:SSZ' values by a pl.duration (days=, minutes=), keeping the written
    form; a value that does not parse stays as it was."""
    parsed = pl.col(column).str.strptime(pl.Datetime, FHIR_DAY, strict=False)
    return (parsed + pl.duration(**duration)).dt.strftime(FHIR_DAY).fill_null(pl.col(column))


def choose(base: Base, rng: np.random.Generator, fraction: float, source: str) -> dict[str, pl.DataFrame]:
    """Disjoint sets of living persons' first (non-duplicate) records at `source`, per kind of change:
    new events (fraction of the source's records), corrections (half that) and retractions (a
    quarter), at least one each. SOURCE_PERSON_ID, TRUE_PERSON_ID."""
    alive = base.persons.filter(pl.col("DEATH_DATE").fill_null("") == "").select("TRUE_PERSON_ID")
    records = (
        base.records.filter((pl.col("SOURCE") == source) & (pl.col("IS_DUPLICATE").cast(pl.Int8) == 0))
        .join(alive, on="TRUE_PERSON_ID")
        .unique("TRUE_PERSON_ID", keep="first", maintain_order=True)
        .select("SOURCE_PERSON_ID", "TRUE_PERSON_ID")
    )
    n = len(records)
    wanted = {"new_events": fraction * n, "corrections": fraction * n / 2, "retractions": fraction * n / 4}
    shuffled = records[rng.permutation(n)]
    out, start = {}, 0
    for kind, count in wanted.items():
        take = max(1, round(count))
        out[kind] = shuffled.slice(start, take)
        start += take
    return out


def change_rows(source: str, batch: str, entity: str, change: str, frame: pl.DataFrame, field_name: str):
    """Rows of truth/update_changes.csv from a frame with RECORD_ID and SOURCE_PERSON_ID."""
    return frame.select(
        pl.lit(source).alias("SOURCE"),
        pl.lit(batch).alias("BATCH"),
        pl.lit(entity).alias("ENTITY"),
        pl.lit(change).alias("CHANGE"),
        pl.col("RECORD_ID"),
        pl.col("SOURCE_PERSON_ID"),
        pl.col("TRUE_PERSON_ID"),
        pl.lit(field_name).alias("FIELD"),
    )


def latest(frame: pl.DataFrame, person: str, time: str) -> pl.DataFrame:
    """Each person's latest row by `time` (file order breaks ties), in file order."""
    return frame.sort([time, "_order"]).group_by(person, maintain_order=True).last().sort("_order")


def changed_ids(frame: pl.DataFrame, record: str | pl.Expr, person: str, owner: pl.DataFrame | None = None):
    """RECORD_ID, SOURCE_PERSON_ID, TRUE_PERSON_ID of changed rows (TRUE_PERSON_ID from `owner`)."""
    record = pl.col(record) if isinstance(record, str) else record
    if "TRUE_PERSON_ID" not in frame.columns and owner is not None:
        frame = frame.join(
            owner.select(pl.col("PATIENT").alias(person), "TRUE_PERSON_ID").unique(), on=person
        )
    return frame.select(
        record.alias("RECORD_ID"), pl.col(person).alias("SOURCE_PERSON_ID"), pl.col("TRUE_PERSON_ID")
    )
