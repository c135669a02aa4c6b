"""Landing files on disk: one Sink per file (header, then the chunks' pieces in chunk order), the
file name, entity and header of every source's file, and appending a chunk's result to them."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

from rwe_assets.synthetic.formats import fhir, lab, synthea
from rwe_assets.synthetic.formats.common import csv_header
from rwe_assets.synthetic.formats.synpuf import layout as synpuf
from rwe_assets.synthetic.report import FileStats, GenerationReport

if TYPE_CHECKING:  # chunks.py compresses with gzip_member below
    from rwe_assets.synthetic.chunks import ChunkResult

GZIP_LEVEL = 3
LANDING_DIR = "landing"


def gzip_member(data: bytes) -> bytes:
    """One gzip member, mtime 0 (deterministic); empty input stays empty."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if data else b""


class Sink:
    """One output file, opened on first write: the header, then the chunks' (already compressed)
    pieces appended in chunk order. Concatenated gzip members are one valid gzip stream."""

    def __init__(self, path: Path, header: bytes, compress: bool):
        self.path = path
        self.header = gzip_member(header) if compress else header
        self.handle = None

    def write(self, data: bytes) -> int:
        written = 0
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "wb")  # noqa: SIM115 - open across chunks; close() closes it
            self.handle.write(self.header)
            written += len(self.header)
        if data:
            self.handle.write(data)
            written += len(data)
        return written

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def landing_name(source: str, key: str, compress: bool) -> tuple[str, str, bytes]:
    """(file name, entity, header) of a landing file."""
    if source == "ehr_site_a":
        return synthea.file_name(key, compress), key, csv_header(synthea.HEADERS[key])
    if source == "ehr_site_b":
        return fhir.file_name(key, compress), key.lower(), b""
    if source == "payer":
        columns = synpuf.FILES[key][1]
        return (
            synpuf.file_name(key, compress),
            synpuf.entity_of(key),
            csv_header(columns, quoted=key != "members"),
        )
    name = "sample_manifest.csv.gz" if compress else "sample_manifest.csv"
    return name, "sample_manifest", csv_header(lab.MANIFEST)


def write_result(
    out: Path, result: ChunkResult, sinks, stats, truth_sinks, report: GenerationReport, compress: bool
):
    """Append one chunk's pieces to the landing files (opened on first use), its truth and counts."""
    landing = out / LANDING_DIR
    for (source, key), piece in result.pieces.items():
        if piece.rows == 0 and (source, result.batch, key) not in sinks and source == "ehr_site_b":
            continue  # an NDJSON file is never empty
        name, entity, header = landing_name(source, key, compress)
        ident = (source, result.batch, key)
        if ident not in sinks:
            path = landing / source / result.batch / name
            sinks[ident] = Sink(path, header, compress)
            stats[ident] = FileStats(source, result.batch, entity, path.relative_to(out).as_posix())
        stat = stats[ident]
        stat.bytes += sinks[ident].write(piece.data)
        stat.rows += piece.rows
        stat.malformed_rows += piece.malformed
        stat.invalid_date_rows += piece.invalid_date
        stat.unmapped_code_rows += piece.unmapped
    if result.vcf is not None:
        _write_vcf(out, landing, result, stats, report)
    for key, data in result.truth.items():
        truth_sinks[key].write(data)
    for source, count in result.records.items():
        report.source_records[source] = report.source_records.get(source, 0) + count
        report.duplicate_records[source] = report.duplicate_records.get(source, 0) + result.duplicates[source]
        totals = report.noise.setdefault(source, {})
        for flag, value in result.noise[source].items():
            totals[flag] = totals.get(flag, 0) + value
    report.lab_samples += result.counts["lab_samples"]
    report.carriers += result.counts["carriers"]
    report.breast_cancer += result.counts["breast_cancer"]
    report.twins += result.counts["twins"]
    report.deaths += result.counts["deaths"]


def _write_vcf(out: Path, landing: Path, result: ChunkResult, stats, report: GenerationReport) -> None:
    vcf = result.vcf
    path = landing / "lab" / result.batch / vcf.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(vcf.data)
    stat = FileStats(
        "lab",
        result.batch,
        "vcf",
        path.relative_to(out).as_posix(),
        rows=vcf.records,
        non_ref_calls=vcf.calls,
    )
    stat.bytes = len(vcf.data)
    stats[("lab", result.batch, vcf.name)] = stat
    index = lab.tabix_index(path)
    if index is None:
        report.tabix_indexed = False
    else:
        stats[("lab", result.batch, vcf.name + ".tbi")] = FileStats(
            "lab", result.batch, "vcf_index", index.relative_to(out).as_posix(), bytes=index.stat().st_size
        )
