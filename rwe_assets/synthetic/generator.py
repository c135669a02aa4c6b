"""generate(): the population, chunk by chunk, into a landing zone plus ground truth beside it.

    OUT_DIR/landing/ehr_site_a/<batch>/*.csv              Synthea v3 CSV
    OUT_DIR/landing/ehr_site_b/<batch>/<Type>.000.ndjson  FHIR R4 bulk export
    OUT_DIR/landing/payer/<batch>/DE1_0_*.csv, members.csv DE-SynPUF layout + member PII
    OUT_DIR/landing/lab/<batch>/sample_manifest.csv, run_<chunk>.vcf.gz(.tbi)
    OUT_DIR/truth/...                                      who is who, and what to expect

Persons are generated in chunks (default 10,000): each chunk is simulated, rendered and appended to
the files, then dropped, so memory does not grow with the population. A chunk's random streams are
seeded by (seed, stream, chunk number): the output depends only on (persons, seed, config,
batches, chunk size), never on timing, worker count or dict order. Gzip members carry mtime 0.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from rwe_assets.errors import ConfigError
from rwe_assets.synthetic import clinical, identity, membership
from rwe_assets.synthetic.catalogue import load_catalogue, load_names
from rwe_assets.synthetic.config import DEFAULT_CHUNK, NoiseConfig
from rwe_assets.synthetic.formats import fhir, lab, synpuf, synthea
from rwe_assets.synthetic.formats.common import Chunk, Piece, csv_header, csv_lines
from rwe_assets.synthetic.population import make_persons
from rwe_assets.synthetic.reference import make_reference
from rwe_assets.synthetic.util import NEVER, iso_dates, stream, uuids

GZIP_LEVEL = 3
TRUTH_DIR = "truth"
LANDING_DIR = "landing"
# clinical entities counted as events (EHR rows, claims, drug events, genotype calls)
EVENT_ENTITIES = {
    "ehr_site_a": {
        "encounters",
        "conditions",
        "medications",
        "procedures",
        "observations",
        "immunizations",
        "allergies",
        "devices",
    },
    "ehr_site_b": {
        "encounter",
        "condition",
        "medicationrequest",
        "procedure",
        "observation",
        "immunization",
        "allergyintolerance",
        "device",
    },
    "payer": {"inpatient_claims", "outpatient_claims", "carrier_claims", "prescription_drug_events"},
}
PERSONS_COLUMNS = [
    "TRUE_PERSON_ID",
    "HOUSEHOLD_ID",
    "HOUSEHOLD_ROLE",
    "TWIN_OF",
    "SEX",
    "BIRTH_DATE",
    "DEATH_DATE",
    "FIRST_NAME",
    "MIDDLE_NAME",
    "LAST_NAME",
    "BIRTH_SURNAME",
    "SURNAME_CHANGE_DATE",
    "ADDRESS",
    "CITY",
    "STATE",
    "ZIP",
    "OLD_ADDRESS",
    "OLD_CITY",
    "OLD_STATE",
    "OLD_ZIP",
    "MOVE_DATE",
    "SSN",
    "PHONE",
    "CARRIED_VARIANT",
    "BREAST_CANCER_ONSET",
    "IN_EHR_SITE_A",
    "IN_EHR_SITE_B",
    "IN_PAYER",
    "IN_LAB",
]
RECORDS_COLUMNS = [
    "SOURCE",
    "BATCH",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "IS_DUPLICATE",
    "TYPO",
    "NICKNAME",
    "DAY_MONTH_SWAP",
    "OLD_SURNAME",
    "OLD_ADDRESS",
    "SSN_MISSING",
]
SAMPLES_COLUMNS = [
    "SAMPLE_ID",
    "SOURCE_PERSON_ID",
    "TRUE_PERSON_ID",
    "BATCH",
    "VCF_FILE",
    "IS_RETEST",
    "INDICATED",
]
GENOTYPE_COLUMNS = ["VCF_FILE", "CHROM", "POS", "REF", "ALT", "SAMPLE_ID", "GENOTYPE", "TRUE_PERSON_ID"]
COUNTS_COLUMNS = [
    "SOURCE",
    "BATCH",
    "FILE",
    "ENTITY",
    "ROWS",
    "MALFORMED_ROWS",
    "INVALID_DATE_ROWS",
    "UNMAPPED_CODE_ROWS",
    "NON_REF_CALLS",
]


@dataclass
class FileStats:
    source: str
    batch: str
    entity: str
    path: str  # relative to OUT_DIR
    rows: int = 0  # data lines (records), malformed ones included
    malformed_rows: int = 0
    invalid_date_rows: int = 0
    unmapped_code_rows: int = 0
    non_ref_calls: int = 0  # VCF only
    bytes: int = 0


@dataclass
class GenerationReport:
    """What generate() wrote. Deterministic: no times, no absolute paths."""

    persons: int
    seed: int
    batches: list[str]
    chunk_size: int
    compress: bool
    config: dict[str, float]
    files: list[FileStats] = field(default_factory=list)
    source_records: dict[str, int] = field(default_factory=dict)
    duplicate_records: dict[str, int] = field(default_factory=dict)
    noise: dict[str, dict[str, int]] = field(default_factory=dict)
    lab_samples: int = 0
    carriers: int = 0
    breast_cancer: int = 0
    twins: int = 0
    deaths: int = 0
    tabix_indexed: bool = True

    @property
    def rows_written(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes_written(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def clinical_events(self) -> int:
        total = sum(
            f.rows - f.malformed_rows for f in self.files if f.entity in EVENT_ENTITIES.get(f.source, ())
        )
        return total + sum(f.non_ref_calls for f in self.files)

    @property
    def events_per_person(self) -> float:
        return self.clinical_events / self.persons if self.persons else 0.0

    def malformed_rows(self, source: str | None = None, entity: str | None = None) -> int:
        return sum(
            f.malformed_rows
            for f in self.files
            if (source is None or f.source == source) and (entity is None or f.entity == entity)
        )

    def files_of(self, source: str, batch: str | None = None) -> list[FileStats]:
        return [f for f in self.files if f.source == source and (batch is None or f.batch == batch)]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_written"] = self.rows_written
        out["bytes_written"] = self.bytes_written
        out["clinical_events"] = self.clinical_events
        out["events_per_person"] = round(self.events_per_person, 3)
        return out


@dataclass
class _ChunkResult:
    index: int
    batch: str
    pieces: dict[tuple[str, str], Piece]  # (source, file key) -> lines
    vcf: lab.VcfOutput | None
    truth: dict[str, bytes]
    records: dict[str, int]
    duplicates: dict[str, int]
    noise: dict[str, dict[str, int]]
    counts: dict[str, int]


def _flags(records: identity.Records) -> dict[str, int]:
    return {
        "typo": int(records.typo.sum()),
        "nickname": int(records.nickname.sum()),
        "day_month_swap": int(records.dm_swap.sum()),
        "old_surname": int(records.old_surname.sum()),
        "old_address": int(records.old_address.sum()),
        "ssn_missing": int(records.ssn_missing.sum()),
    }


def _run_chunk(
    seed: int,
    index: int,
    batch: str,
    first_pid: int,
    n: int,
    first_in_batch: bool,
    config: NoiseConfig,
    compress: bool,
) -> _ChunkResult:
    names, cat = load_names(), load_catalogue()
    persons = make_persons(stream(seed, "population", index), first_pid, n, seed, config, names, cat)
    prepared = clinical.prepare(stream(seed, "clinical", index), persons, cat, config)
    ms = membership.assign(stream(seed, "membership", index), persons.birth, persons.death, config)
    timeline = clinical.build(stream(seed, "timeline", index), persons, ms, prepared, cat, config)
    tests = identity.select_lab_tests(stream(seed, "lab", index), persons, ms, prepared, cat, config)
    rng_id = stream(seed, "identity", index)
    records = {
        "ehr_site_a": identity.ehr_records(
            rng_id, "ehr_site_a", persons, ms.in_a, ms.a_start, ms.a_dup_day, names, config
        ),
        "ehr_site_b": identity.ehr_records(
            rng_id, "ehr_site_b", persons, ms.in_b, ms.b_start, ms.b_dup_day, names, config
        ),
        "payer": identity.payer_records(rng_id, persons, ms, names, config),
        "lab": identity.lab_records(rng_id, persons, tests, names, config),
    }
    chunk = Chunk(
        seed=seed,
        index=index,
        batch=batch,
        first_in_batch=first_in_batch,
        persons=persons,
        membership=ms,
        prepared=prepared,
        timeline=timeline,
        records=records,
        lab=tests,
        catalogue=cat,
        names=names,
        config=config,
        reference=make_reference(seed, names),
        encounter_ids=uuids(stream(seed, "ids", index), len(timeline.e_person)),
        rng=stream(seed, "render", index),
    )
    pieces: dict[tuple[str, str], Piece] = {}
    for entity, piece in synthea.render(chunk).items():
        pieces[("ehr_site_a", entity)] = piece
    for resource_type, piece in fhir.render(chunk).items():
        pieces[("ehr_site_b", resource_type)] = piece
    for key, piece in synpuf.render(chunk).items():
        pieces[("payer", key)] = piece
    name = lab.vcf_name(index)
    vcf = lab.render_vcf(chunk, name)
    pieces[("lab", "sample_manifest")] = lab.render_manifest(chunk, name)
    truth = _truth(chunk, name if vcf else "")
    if vcf is not None:
        truth["genotypes"] = csv_lines(vcf.genotypes)
    if compress:  # in the worker, so parallel chunks compress in parallel; one gzip member per piece
        for piece in pieces.values():
            piece.data = _gzip(piece.data)
    breast = cat.condition("breast_cancer").index
    return _ChunkResult(
        index=index,
        batch=batch,
        pieces=pieces,
        vcf=vcf,
        truth=truth,
        records={s: len(r) for s, r in records.items()},
        duplicates={s: int(r.dup.sum()) for s, r in records.items()},
        noise={s: _flags(r) for s, r in records.items()},
        counts={
            "lab_samples": len(tests.person),
            "carriers": int((persons.carrier >= 0).sum()),
            "breast_cancer": int((prepared.onset[:, breast] < NEVER).sum()),
            "twins": int((persons.twin_of > 0).sum()),
            "deaths": int((persons.death < NEVER).sum()),
        },
    )


def _truth(chunk: Chunk, vcf_file: str) -> dict[str, bytes]:
    p, ms, places, cat = chunk.persons, chunk.membership, chunk.names.places, chunk.catalogue
    city = np.array([x.city for x in places] + [""])
    state = np.array([x.state for x in places] + [""])
    zips = np.array([x.zip for x in places] + [""])
    old = np.where(p.old_place >= 0, p.old_place, len(places))
    in_lab = np.zeros(len(p), dtype=bool)
    in_lab[chunk.lab.person] = True
    variant_keys = np.array([v.key for v in cat.variants] + [""])
    breast = chunk.prepared.onset[:, cat.condition("breast_cancer").index]
    persons = pl.DataFrame(
        {
            "TRUE_PERSON_ID": p.pid,
            "HOUSEHOLD_ID": p.household,
            "HOUSEHOLD_ROLE": np.array(["head", "partner", "child"])[p.role],
            "TWIN_OF": np.where(p.twin_of > 0, p.twin_of.astype(str), ""),
            "SEX": np.where(p.sex == 1, "F", "M"),
            "BIRTH_DATE": iso_dates(p.birth),
            "DEATH_DATE": iso_dates(p.death),
            "FIRST_NAME": p.first,
            "MIDDLE_NAME": p.middle,
            "LAST_NAME": p.last,
            "BIRTH_SURNAME": p.birth_surname,
            "SURNAME_CHANGE_DATE": iso_dates(
                np.where(p.surname_change_day >= 0, p.surname_change_day, NEVER)
            ),
            "ADDRESS": p.street,
            "CITY": city[p.place],
            "STATE": state[p.place],
            "ZIP": zips[p.place],
            "OLD_ADDRESS": p.old_street,
            "OLD_CITY": city[old],
            "OLD_STATE": state[old],
            "OLD_ZIP": zips[old],
            "MOVE_DATE": iso_dates(np.where(p.move_day >= 0, p.move_day, NEVER)),
            "SSN": p.ssn,
            "PHONE": p.phone,
            "CARRIED_VARIANT": variant_keys[np.where(p.carrier >= 0, p.carrier, len(cat.variants))],
            "BREAST_CANCER_ONSET": iso_dates(breast),
            "IN_EHR_SITE_A": ms.in_a.astype(np.int8),
            "IN_EHR_SITE_B": ms.in_b.astype(np.int8),
            "IN_PAYER": ms.in_payer.astype(np.int8),
            "IN_LAB": in_lab.astype(np.int8),
        }
    )
    frames = []
    for source, r in chunk.records.items():
        frames.append(
            pl.DataFrame(
                {
                    "SOURCE": np.full(len(r), source),
                    "BATCH": np.full(len(r), chunk.batch),
                    "SOURCE_PERSON_ID": r.ids,
                    "TRUE_PERSON_ID": p.pid[r.person],
                    "IS_DUPLICATE": r.dup,
                    "TYPO": r.typo.astype(np.int8),
                    "NICKNAME": r.nickname.astype(np.int8),
                    "DAY_MONTH_SWAP": r.dm_swap.astype(np.int8),
                    "OLD_SURNAME": r.old_surname.astype(np.int8),
                    "OLD_ADDRESS": r.old_address.astype(np.int8),
                    "SSN_MISSING": r.ssn_missing.astype(np.int8),
                },
                schema_overrides={"SOURCE": pl.String, "BATCH": pl.String, "SOURCE_PERSON_ID": pl.String},
            )
        )
    tests = chunk.lab
    lab_index = chunk.records["lab"].index(len(p))
    samples = pl.DataFrame(
        {
            "SAMPLE_ID": tests.sample_id,
            "SOURCE_PERSON_ID": chunk.records["lab"].ids.gather(lab_index[tests.person, tests.record]),
            "TRUE_PERSON_ID": p.pid[tests.person],
            "BATCH": np.full(len(tests.person), chunk.batch),
            "VCF_FILE": np.full(len(tests.person), vcf_file),
            "IS_RETEST": tests.record,
            "INDICATED": tests.indicated.astype(np.int8),
        },
        schema_overrides={
            "SAMPLE_ID": pl.String,
            "SOURCE_PERSON_ID": pl.String,
            "BATCH": pl.String,
            "VCF_FILE": pl.String,
        },
    )
    return {
        "persons": csv_lines(persons),
        "person_records": csv_lines(pl.concat(frames)),
        "lab_samples": csv_lines(samples),
    }


def _gzip(data: bytes) -> bytes:
    """One gzip member, mtime 0 (deterministic); empty input stays empty."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if data else b""


class _Sink:
    """One output file, opened on first write: the header, then the chunks' (already compressed)
    pieces appended in chunk order. Concatenated gzip members are one valid gzip stream."""

    def __init__(self, path: Path, header: bytes, compress: bool):
        self.path = path
        self.header = _gzip(header) if compress else header
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


def _landing_name(source: str, key: str, compress: bool) -> tuple[str, str, bytes]:
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


def batch_names(batches: int) -> list[str]:
    return [f"batch_{i + 1:04d}" for i in range(batches)]


def _plan(persons: int, batches: int, chunk_size: int) -> list[tuple[int, str, int, int, bool]]:
    """(chunk index, batch, first pid, persons, first chunk of its batch) for every chunk."""
    names = batch_names(batches)
    bounds = np.linspace(0, persons, batches + 1).round().astype(np.int64)
    plan = []
    index = 0
    for b, name in enumerate(names):
        start, stop = int(bounds[b]), int(bounds[b + 1])
        first = True
        for lo in range(start, stop, chunk_size):
            plan.append((index, name, lo + 1, min(chunk_size, stop - lo), first))
            index += 1
            first = False
    return plan


def _results(seed, plan, config, workers: int, compress: bool) -> Iterator[_ChunkResult]:
    if workers <= 1:
        for index, batch, first_pid, n, first in plan:
            yield _run_chunk(seed, index, batch, first_pid, n, first, config, compress)
        return
    # bounded look-ahead: at most workers + 1 chunks in flight, results consumed in order. Spawned
    # workers: forking a process whose polars thread pool is running can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = []
        queue = list(plan)
        while queue or pending:
            while queue and len(pending) < workers + 1:
                index, batch, first_pid, n, first = queue.pop(0)
                pending.append(
                    pool.submit(_run_chunk, seed, index, batch, first_pid, n, first, config, compress)
                )
            yield pending.pop(0).result()


def generate(
    out_dir: str | os.PathLike,
    persons: int,
    seed: int,
    config: NoiseConfig = NoiseConfig(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    batches: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    compress: bool = False,
    workers: int = 1,
) -> GenerationReport:
    """Write a synthetic multi-source population of `persons` people into out_dir/landing and its
    ground truth into out_dir/truth; return what was written."""
    if persons < 1:
        raise ConfigError(f"generate: expected at least 1 person, found {persons}")
    if not 1 <= batches <= persons:
        raise ConfigError(f"generate: expected 1 to {persons} batches, found {batches}")
    if chunk_size < 1:
        raise ConfigError(f"generate: expected a chunk size of at least 1, found {chunk_size}")
    out = Path(out_dir)
    landing = out / LANDING_DIR
    truth = out / TRUTH_DIR
    for folder in (landing, truth):
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"generate: expected an empty output folder, found files in {folder}")
    report = GenerationReport(persons, seed, batch_names(batches), chunk_size, compress, config.as_dict())
    sinks: dict[tuple[str, str, str], _Sink] = {}
    stats: dict[tuple[str, str, str], FileStats] = {}
    truth_sinks = {
        "persons": _Sink(truth / "persons.csv", csv_header(PERSONS_COLUMNS), False),
        "person_records": _Sink(truth / "person_records.csv", csv_header(RECORDS_COLUMNS), False),
        "lab_samples": _Sink(truth / "lab_samples.csv", csv_header(SAMPLES_COLUMNS), False),
        "genotypes": _Sink(truth / "genotypes.csv", csv_header(GENOTYPE_COLUMNS), False),
    }
    try:
        for result in _results(seed, _plan(persons, batches, chunk_size), config, workers, compress):
            write_result(out, result, sinks, stats, truth_sinks, report, compress)
    finally:
        for sink in [*sinks.values(), *truth_sinks.values()]:
            sink.close()
    for sink in truth_sinks.values():
        if sink.handle is None and not sink.path.exists():
            sink.write(b"")
            sink.close()
    report.files = [stats[k] for k in sorted(stats)]
    _write_counts(truth / "expected_counts.csv", report.files)
    (truth / "report.json").write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    return report


def write_result(
    out: Path, result: _ChunkResult, sinks, stats, truth_sinks, report: GenerationReport, compress: bool
):
    """Append one chunk's pieces to the landing files (opened on first use), its truth and counts."""
    landing = out / LANDING_DIR
    for (source, key), piece in result.pieces.items():
        if piece.rows == 0 and (source, result.batch, key) not in sinks and source == "ehr_site_b":
            continue  # an NDJSON file is never empty
        name, entity, header = _landing_name(source, key, compress)
        ident = (source, result.batch, key)
        if ident not in sinks:
            path = landing / source / result.batch / name
            sinks[ident] = _Sink(path, header, compress)
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


def _write_vcf(out: Path, landing: Path, result: _ChunkResult, stats, report: GenerationReport) -> None:
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


def _write_counts(path: Path, files: list[FileStats]) -> None:
    frame = pl.DataFrame(
        {
            "SOURCE": [f.source for f in files],
            "BATCH": [f.batch for f in files],
            "FILE": [f.path for f in files],
            "ENTITY": [f.entity for f in files],
            "ROWS": [f.rows for f in files],
            "MALFORMED_ROWS": [f.malformed_rows for f in files],
            "INVALID_DATE_ROWS": [f.invalid_date_rows for f in files],
            "UNMAPPED_CODE_ROWS": [f.unmapped_code_rows for f in files],
            "NON_REF_CALLS": [f.non_ref_calls for f in files],
        },
        schema={
            c: (pl.String if c in ("SOURCE", "BATCH", "FILE", "ENTITY") else pl.Int64) for c in COUNTS_COLUMNS
        },
    )
    path.write_bytes(csv_header(COUNTS_COLUMNS) + csv_lines(frame))
