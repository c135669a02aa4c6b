"""generate_update(): one update batch: new persons (the next chunks of the simulation), then each
source's changes (synthea_snapshot.py, fhir_incremental.py, synpuf_incremental.py), and its truth."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from rwe_assets.errors import ConfigError
from rwe_assets.lib import truth_files
from rwe_assets.synthetic.chunks import PlanRow, chunk_plan, results
from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.formats.common import csv_header, csv_lines
from rwe_assets.synthetic.landing_files import (
    LANDING_DIR,
    Sink,
    gzip_member,
    landing_name,
    write_result,
)
from rwe_assets.synthetic.report import FileStats, GenerationReport
from rwe_assets.synthetic.truth import truth_sinks, write_counts
from rwe_assets.synthetic.update.base import Base, read_base
from rwe_assets.synthetic.update.fhir_incremental import site_b_changes
from rwe_assets.synthetic.update.synpuf_incremental import ADJUSTMENT_COLUMNS, ADJUSTMENTS_FILE, payer_changes
from rwe_assets.synthetic.update.synthea_snapshot import site_a_changes
from rwe_assets.synthetic.util import stream

CHANGES_COLUMNS = [
    "SOURCE",
    "BATCH",
    "ENTITY",
    "CHANGE",
    "RECORD_ID",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "FIELD",
]


@dataclass
class UpdateReport:
    """What generate_update() wrote. Deterministic: no times, no absolute paths."""

    base_persons: int
    seed: int
    batch: str
    fraction: float
    new_persons: int
    first_new_person_id: int
    changes: dict[str, int] = field(default_factory=dict)  # '<source>/<change>' -> records
    resent_rows: dict[str, int] = field(default_factory=dict)  # source -> unchanged rows re-sent
    files: list[FileStats] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(f.rows for f in self.files)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_written"] = self.rows_written
        return out


def _file_of(source: str, key: str, compress: bool) -> tuple[str, str, bytes]:
    if key == "carrier_claims_adjustments":
        name = ADJUSTMENTS_FILE + (".gz" if compress else "")
        return name, "carrier_claims", csv_header(ADJUSTMENT_COLUMNS, quoted=True)
    return landing_name(source, key, compress)


def _append(
    out: Path, batch: str, key: tuple[str, str], data: bytes, rows: int, sinks, stats, compress
) -> None:
    """Append lines to a landing file of the update batch, opening it (with its header) if needed."""
    if rows == 0:
        return
    source, name_key = key
    ident = (source, batch, name_key)
    if ident not in sinks:
        name, entity, header = _file_of(source, name_key, compress)
        path = out / LANDING_DIR / source / batch / name
        sinks[ident] = Sink(path, header, compress)
        stats[ident] = FileStats(source, batch, entity, path.relative_to(out).as_posix())
    stats[ident].bytes += sinks[ident].write(gzip_member(data) if compress else data)
    stats[ident].rows += rows


def _new_person_plan(base: Base, n_new: int, number: int, batch: str) -> list[PlanRow]:
    """Chunks of the new persons: numbered after the base's chunks, ids after its persons. Update k takes
    the k-th block of as many ids (and chunks) as the base has, whatever the fractions of the updates
    before it (a fraction is at most 1), so two updates never share an id."""
    report = base.report
    persons, chunk = int(report["persons"]), int(report["chunk_size"])
    base_chunks = len(chunk_plan(persons, len(report["batches"]), chunk))
    first_chunk = base_chunks + (number - 1) * math.ceil(persons / chunk)
    first_pid = persons + 1 + (number - 1) * persons
    return [
        (first_chunk + i, batch, first_pid + lo, min(chunk, n_new - lo), i == 0)
        for i, lo in enumerate(range(0, n_new, chunk))
    ]


def batch_name(number: int) -> str:
    return f"update_{number:04d}"


def _check(base: Base, out: Path, number: int) -> None:
    if batch_name(number) in base.report["batches"]:
        raise ConfigError(f"generate_update: the base already has a batch {batch_name(number)}")
    for folder in (out / LANDING_DIR, out / truth_files.TRUTH_DIR):
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"generate_update: expected an empty output folder, found files in {folder}")


def _changes(
    base: Base, out: Path, number: int, fraction: float, report: UpdateReport, sinks, stats
) -> pl.DataFrame:
    """Each source's changes appended to the batch's files; their rows of update_changes.csv."""
    batch, compress = report.batch, base.compress
    rng = stream(report.seed, f"update_{number}")
    all_changes = []
    for name, (pieces, changes, resent) in (
        ("ehr_site_a", site_a_changes(base, batch, fraction, rng)),
        ("ehr_site_b", site_b_changes(base, batch, fraction, rng)),
        ("payer", payer_changes(base, batch, fraction, rng, number)),
    ):
        for key, (data, rows) in pieces.items():
            _append(out, batch, key, data, rows, sinks, stats, compress)
        report.resent_rows[name] = resent
        all_changes.extend(changes)
    return pl.concat(all_changes)


def generate_update(
    base_dir: str | Path,
    out_dir: str | Path,
    fraction: float = 0.01,
    *,
    number: int = 1,
    workers: int = 1,
) -> UpdateReport:
    """Write update batch `update_<number>` for the population generate() wrote into base_dir:
    fraction x persons new persons; per source, fraction x its persons with new events, half as many
    with corrections and a quarter with retractions (living persons, at least one each). The output
    folder must be empty."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"generate_update: expected a fraction in (0, 1], found {fraction}")
    if number < 1:
        raise ConfigError(f"generate_update: expected an update number of at least 1, found {number}")
    base, out = read_base(Path(base_dir)), Path(out_dir)
    _check(base, out, number)
    batch = batch_name(number)
    seed, persons, compress = int(base.report["seed"]), int(base.report["persons"]), base.compress
    config = NoiseConfig(**base.report["config"])
    n_new = max(1, round(fraction * persons))
    plan = _new_person_plan(base, n_new, number, batch)
    report = UpdateReport(persons, seed, batch, fraction, n_new, plan[0][2])
    new_report = GenerationReport(n_new, seed, [batch], base.report["chunk_size"], compress, config.as_dict())
    truth = out / truth_files.TRUTH_DIR
    sinks, stats = {}, {}
    truths = truth_sinks(truth)
    try:
        for result in results(seed, plan, config, workers, compress):
            write_result(out, result, sinks, stats, truths, new_report, compress)
        changes = _changes(base, out, number, fraction, report, sinks, stats)
    finally:
        for sink in [*sinks.values(), *truths.values()]:
            sink.close()
    for source, change, count in (
        changes.group_by("SOURCE", "CHANGE").len().sort("SOURCE", "CHANGE").iter_rows()
    ):
        report.changes[f"{source}/{change}"] = count
    (truth / truth_files.UPDATE_CHANGES).write_bytes(csv_header(CHANGES_COLUMNS) + csv_lines(changes))
    report.files = [stats[k] for k in sorted(stats)]
    write_counts(truth / truth_files.EXPECTED_COUNTS, report.files)
    (truth / truth_files.REPORT).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    return report
