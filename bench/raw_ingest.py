"""Raw-ingest throughput benchmark: rwe_assets' ingest_batch against a bare polars -> Delta baseline.

    python bench/raw_ingest.py [--size-gb 2] [--workdir DIR] [--keep] [--profile]
    python bench/raw_ingest.py --ndjson [--persons 10000] [--workdir DIR] [--keep] [--profile]

--ndjson measures FHIR bulk NDJSON instead (the generator's FHIR site, ehr_site_b, at --persons):
a. ingest_batch of that batch, b. DuckDB read_json_objects(format newline_delimited) of the same
files into a table of a new DuckDB file (the pipeline bench's bare landing load), same process.

1. Generates a Synthea v3 style observations.csv of about --size-gb GB (10^9 bytes) in a fresh work
   dir under /tmp (or under --workdir), as landing/ehr_site_a/<batch>/observations.csv. Chunks of
   1M rows are built with numpy + polars and appended to the file: bounded memory, no per-row loop.
2. In this process, one after the other:
   a. rwe_assets.lib.raw_ingest.ingest_batch of that batch into a fresh lake;
   b. the baseline: polars reads the same CSV with every column as text (infer_schema=False) and
      writes one Delta table (LazyFrame.sink_delta when polars has it, else read_csv + write_delta).
   Each phase reports wall and CPU time, MB/s (10^6 bytes of CSV per wall second), rows/s and peak
   RSS; RSS is sampled from /proc/self/status every 20 ms by a background thread, so the peak is
   per phase (ru_maxrss is process-wide and only grows).
3. Checks that both stored the generated number of rows and that rwe's raw table carries the
   provenance columns; exits 1 otherwise (also when rwe failed the file or quarantined rows).
4. Deletes the work dir unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import deltalake
import duckdb
import numpy as np
import polars as pl
from deltalake import DeltaTable

from rwe_assets.lib.raw_ingest import PROVENANCE_COLUMNS, ingest_batch
from rwe_assets.lib.sources import load_registry

REPO = Path(__file__).resolve().parent.parent

SOURCE = "ehr_site_a"
ENTITY = "observations"
BATCH_ID = "bench_batch_0001"
COLUMNS = ["DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE", "UNITS", "TYPE"]
CHUNK_ROWS = 1_000_000
OBSERVATIONS_PER_ENCOUNTER = 8
ENCOUNTERS_PER_PATIENT = 12
SAMPLE_INTERVAL_S = 0.02
SEED = 20_240_601

# (category, LOINC code, description, units, weight, mean, sd, decimals); a str mean list = text values.
_VOCABULARY: list[tuple] = [
    ("vital-signs", "8302-2", "Body Height", "cm", 6, 165.0, 12.0, 1),
    ("vital-signs", "29463-7", "Body Weight", "kg", 6, 75.0, 16.0, 1),
    ("vital-signs", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 6, 26.5, 4.5, 2),
    ("vital-signs", "8462-4", "Diastolic Blood Pressure", "mm[Hg]", 6, 80.0, 10.0, 0),
    ("vital-signs", "8480-6", "Systolic Blood Pressure", "mm[Hg]", 6, 122.0, 15.0, 0),
    ("vital-signs", "8867-4", "Heart rate", "/min", 6, 76.0, 12.0, 0),
    ("vital-signs", "9279-1", "Respiratory rate", "/min", 6, 15.0, 2.0, 0),
    ("vital-signs", "8310-5", "Body temperature", "Cel", 2, 37.0, 0.4, 1),
    (
        "vital-signs",
        "72514-3",
        "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        "{score}",
        5,
        2.0,
        2.0,
        0,
    ),
    ("laboratory", "2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 3, 95.0, 20.0, 1),
    ("laboratory", "6299-2", "Urea nitrogen [Mass/volume] in Blood", "mg/dL", 3, 14.0, 4.0, 1),
    ("laboratory", "38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 3, 1.0, 0.2, 2),
    ("laboratory", "49765-1", "Calcium [Mass/volume] in Blood", "mg/dL", 3, 9.5, 0.4, 1),
    ("laboratory", "2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 3, 140.0, 3.0, 1),
    ("laboratory", "6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 3, 4.3, 0.4, 1),
    ("laboratory", "2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 3, 104.0, 3.0, 1),
    ("laboratory", "20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "mmol/L", 3, 25.0, 2.0, 1),
    ("laboratory", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 2, 5.9, 0.8, 1),
    ("laboratory", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 2, 190.0, 30.0, 1),
    ("laboratory", "2571-8", "Triglycerides", "mg/dL", 2, 130.0, 40.0, 1),
    (
        "laboratory",
        "18262-6",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
        "mg/dL",
        2,
        110.0,
        25.0,
        1,
    ),
    (
        "laboratory",
        "2085-9",
        "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        "mg/dL",
        2,
        55.0,
        12.0,
        1,
    ),
    ("laboratory", "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 2, 7.0, 2.0, 1),
    ("laboratory", "789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 2, 4.7, 0.5, 2),
    ("laboratory", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 2, 14.0, 1.5, 1),
    (
        "laboratory",
        "4544-3",
        "Hematocrit [Volume Fraction] of Blood by Automated count",
        "%",
        2,
        42.0,
        4.0,
        1,
    ),
    ("laboratory", "777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 2, 250.0, 60.0, 1),
    (
        "laboratory",
        "33914-3",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (MDRD)",
        "mL/min/{1.73_m2}",
        2,
        85.0,
        20.0,
        1,
    ),
    ("laboratory", "14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", "mg/g", 1, 15.0, 8.0, 1),
    (
        "survey",
        "55758-7",
        "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
        "{score}",
        2,
        1.0,
        1.0,
        0,
    ),
    (
        "survey",
        "44261-6",
        "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        "{score}",
        1,
        4.0,
        3.0,
        0,
    ),
    (
        "survey",
        "72166-2",
        "Tobacco smoking status",
        "",
        2,
        ["Never smoked tobacco (finding)", "Ex-smoker (finding)", "Smokes tobacco daily (finding)"],
        0,
        0,
    ),
    (
        "survey",
        "76690-7",
        "Sexual orientation",
        "",
        1,
        ["Heterosexual (finding)", "Homosexual (finding)", "Bisexual (finding)"],
        0,
        0,
    ),
    (
        "survey",
        "93025-5",
        "Protocol for Responding to and Assessing Patients' Assets, Risks, and Experiences [PRAPARE]",
        "",
        1,
        [
            "Full-time work",
            "Part-time or temporary work",
            "Unemployed",
            "Otherwise unemployed but not seeking work",
        ],
        0,
        0,
    ),
    ("social-history", "63586-2", "Total score [AUDIT-C]", "{score}", 1, 2.0, 1.5, 0),
    (
        "exam",
        "29544-4",
        "Tooth decay, periodontal disease, and oral health status",
        "",
        1,
        ["Caries present", "No abnormality"],
        0,
        0,
    ),
]


# --------------------------------------------------------------------------- machine and RSS


def read_rss() -> int:
    """Resident set size of this process in bytes (VmRSS)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler(threading.Thread):
    """Samples VmRSS every 20 ms; `reset` starts a new phase, `peak` is the max since then."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S):
        super().__init__(name="rss-sampler", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._peak = read_rss()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            rss = read_rss()
            with self._lock:
                self._peak = max(self._peak, rss)

    def reset(self) -> int:
        rss = read_rss()
        with self._lock:
            self._peak = rss
        return rss

    def peak(self) -> int:
        rss = read_rss()
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def machine() -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0))
    mem_total = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores_text = f"{cores} cores" if usable == cores else f"{cores} cores ({usable} usable)"
    return f"{cores_text}, {mem_total / 2**30:.1f} GiB RAM, {model}"


def release_memory() -> None:
    """Return freed heap to the OS between phases so one phase's leftovers do not inflate the next's RSS."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# --------------------------------------------------------------------------- data generation

_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8).reshape(256, 2)
_UUID_HEX_POSITIONS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def random_uuids(rng: np.random.Generator, count: int) -> pl.Series:
    """`count` random version-4 UUID strings, built as one byte matrix."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = np.full((count, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = _HEX[raw].reshape(count, 32)
    return pl.Series(text.view("S36").ravel().astype("U36"), dtype=pl.String)


@dataclass(frozen=True)
class Vocabulary:
    category: pl.Series
    code: pl.Series
    description: pl.Series
    units: pl.Series
    type: pl.Series
    probability: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    decimals: np.ndarray
    text_first: np.ndarray  # index into text_values of each code's first text value
    text_count: np.ndarray  # 0 for numeric codes
    text_values: pl.Series


def vocabulary() -> Vocabulary:
    texts: list[str] = []
    first, count, mean = [], [], []
    for entry in _VOCABULARY:
        values = entry[5]
        if isinstance(values, list):
            first.append(len(texts))
            count.append(len(values))
            texts.extend(values)
            mean.append(0.0)
        else:
            first.append(0)
            count.append(0)
            mean.append(values)
    weights = np.array([e[4] for e in _VOCABULARY], dtype=np.float64)
    count_array = np.array(count, dtype=np.int64)
    return Vocabulary(
        category=pl.Series([e[0] for e in _VOCABULARY]),
        code=pl.Series([e[1] for e in _VOCABULARY]),
        description=pl.Series([e[2] for e in _VOCABULARY]),
        units=pl.Series([e[3] or None for e in _VOCABULARY], dtype=pl.String),  # null: written as ,,
        type=pl.Series(["text" if c else "numeric" for c in count]),
        probability=weights / weights.sum(),
        mean=np.array(mean),
        sd=np.array([e[6] for e in _VOCABULARY], dtype=np.float64),
        decimals=np.array([e[7] for e in _VOCABULARY], dtype=np.int64),
        text_first=np.array(first, dtype=np.int64),
        text_count=count_array,
        text_values=pl.Series(texts),
    )


def observation_chunk(rng: np.random.Generator, vocab: Vocabulary, rows: int) -> pl.DataFrame:
    """`rows` observations: ~8 per encounter, ~12 encounters per patient, one timestamp per encounter."""
    encounters = max(1, rows // OBSERVATIONS_PER_ENCOUNTER)
    patients = max(1, encounters // ENCOUNTERS_PER_PATIENT)
    encounter_of_row = np.sort(rng.integers(0, encounters, size=rows))
    patient_of_encounter = rng.integers(0, patients, size=encounters)
    start = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
    span = int(datetime(2024, 12, 31, tzinfo=UTC).timestamp()) - start
    encounter_dates = pl.from_epoch(pl.Series(rng.integers(start, start + span, size=encounters)), "s")
    encounter_dates = encounter_dates.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    patient_ids = random_uuids(rng, patients).gather(patient_of_encounter)
    encounter_ids = random_uuids(rng, encounters)

    code = rng.choice(len(vocab.probability), size=rows, p=vocab.probability)
    numeric = np.abs(vocab.mean[code] + vocab.sd[code] * rng.standard_normal(rows))
    scale = 10.0 ** vocab.decimals[code]
    numeric = np.round(numeric * scale) / scale
    text_count = vocab.text_count[code]
    text_index = vocab.text_first[code] + rng.integers(0, 1 << 30, size=rows) % np.maximum(text_count, 1)
    is_text = pl.Series(text_count > 0)
    integral = pl.Series(vocab.decimals[code] == 0)
    numeric_series = pl.Series(numeric)
    numeric_text = (
        pl.select(
            pl.when(integral)
            .then(numeric_series.cast(pl.Int64).cast(pl.String))
            .otherwise(numeric_series.cast(pl.String))
        )
        .to_series()
        .alias("VALUE")
    )
    value = pl.select(
        pl.when(is_text).then(vocab.text_values.gather(text_index)).otherwise(numeric_text)
    ).to_series()
    return pl.DataFrame(
        {
            "DATE": encounter_dates.gather(encounter_of_row),
            "PATIENT": patient_ids.gather(encounter_of_row),
            "ENCOUNTER": encounter_ids.gather(encounter_of_row),
            "CATEGORY": vocab.category.gather(code),
            "CODE": vocab.code.gather(code),
            "DESCRIPTION": vocab.description.gather(code),
            "VALUE": value,
            "UNITS": vocab.units.gather(code),
            "TYPE": vocab.type.gather(code),
        }
    )


def generate_csv(path: Path, target_bytes: int) -> int:
    """Append 1M-row chunks to `path` until it holds about `target_bytes`; returns the data rows."""
    rng = np.random.default_rng(SEED)
    vocab = vocabulary()
    rows = 0
    bytes_per_row = 170.0  # a first guess, replaced by the measured mean after the first chunk
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        header = (",".join(COLUMNS) + "\n").encode()
        out.write(header)
        while (written := out.tell()) < target_bytes:
            chunk_rows = min(CHUNK_ROWS, max(1, round((target_bytes - written) / bytes_per_row)))
            chunk = observation_chunk(rng, vocab, chunk_rows)
            chunk.write_csv(out, include_header=False)
            rows += chunk_rows
            bytes_per_row = (out.tell() - len(header)) / rows
            if sys.stdout.isatty():
                print(
                    f"\r  generating: {out.tell() / 1e9:5.2f} / {target_bytes / 1e9:.2f} GB",
                    end="",
                    flush=True,
                )
        out.flush()
        os.fsync(out.fileno())  # the ingest phases must not pay for the generator's writeback
    if sys.stdout.isatty():
        print()
    return rows


# --------------------------------------------------------------------------- phases


@dataclass
class Phase:
    name: str
    seconds: float
    cpu_seconds: float  # user + system time of the whole process during the phase
    rows: int
    start_rss: int
    peak_rss: int
    note: str = ""


def measure(name: str, sampler: RssSampler, run: Callable[[], int]) -> Phase:
    release_memory()
    start_rss = sampler.reset()
    cpu_started = cpu_time()
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    return Phase(name, seconds, cpu_time() - cpu_started, rows, start_rss, sampler.peak())


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def delta_rows(path: Path) -> int:
    return DeltaTable(str(path)).to_pyarrow_dataset().count_rows()


def run_rwe(lake_dir: Path, landing_dir: Path, profile: bool) -> tuple[int, list[str]]:
    """ingest_batch; returns the rows stored and a list of problems found."""
    source = load_registry().get(SOURCE)
    problems: list[str] = []
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report = profiler.runcall(ingest_batch, lake_dir, landing_dir, source, BATCH_ID)
        print("\ncProfile of ingest_batch (top 25 by own time; native calls count as one entry):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    else:
        report = ingest_batch(lake_dir, landing_dir, source, BATCH_ID)
    for failed in report.failed:
        problems.append(f"rwe: {failed.relative_path} failed: {failed.error}")
    for result in report.files:
        if result.rows_quarantined:
            problems.append(f"rwe: {result.rows_quarantined} rows of {result.relative_path} were quarantined")
    return report.rows_stored(ENTITY), problems


def run_baseline(csv_path: Path, target: Path) -> tuple[int, str]:
    if hasattr(pl.LazyFrame, "sink_delta"):
        pl.scan_csv(csv_path, infer_schema=False).sink_delta(target, mode="error")
        how = "pl.scan_csv(infer_schema=False).sink_delta (streaming)"
    else:
        pl.read_csv(csv_path, infer_schema=False).write_delta(target, mode="error")
        how = "pl.read_csv(infer_schema=False).write_delta (in memory)"
    return delta_rows(target), how


# --------------------------------------------------------------------------- report


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def print_table(phases: list[Phase], size_bytes: int) -> None:
    widths = (30, 8, 8, 8, 12, 12, 10, 13)
    titles = ("phase", "wall s", "CPU s", "MB/s", "rows/s", "rows", "peak RSS", "peak - start")
    head = "".join(
        f"{t:<{w}}" if i == 0 else f"{t:>{w}}" for i, (t, w) in enumerate(zip(titles, widths, strict=True))
    )
    print(head)
    print("-" * len(head))
    for p in phases:
        cells = (
            p.name,
            f"{p.seconds:.1f}",
            f"{p.cpu_seconds:.1f}",
            f"{size_bytes / 1e6 / p.seconds:.1f}",
            f"{p.rows / p.seconds:,.0f}",
            f"{p.rows:,}",
            mib(p.peak_rss),
            mib(p.peak_rss - p.start_rss),
        )
        print(
            "".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )


def in_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- NDJSON mode

NDJSON_SOURCE = "ehr_site_b"  # the generator's FHIR bulk site
NDJSON_SEED = 42


def generate_ndjson(work: Path, persons: int) -> Path:
    """The generator's population at `persons`; returns the landing dir holding only the FHIR site."""
    from rwe_assets.synthetic import generate  # the generator is a bench input, not the runtime's

    generate(work / "generated", persons, seed=NDJSON_SEED)
    landing = work / "landing"
    landing.mkdir()
    (work / "generated" / "landing" / NDJSON_SOURCE).rename(landing / NDJSON_SOURCE)
    shutil.rmtree(work / "generated")
    return landing


def run_duckdb_ndjson(files: list[Path], target: Path) -> int:
    """Every file into a table of a new DuckDB file, one JSON value per line; lines DuckDB cannot
    parse are skipped (no line numbers, no quarantine, no provenance)."""
    con = duckdb.connect(str(target))
    rows = 0
    for k, path in enumerate(files):
        con.execute(
            f"CREATE TABLE t{k} AS SELECT * FROM read_json_objects(?, format = 'newline_delimited', "
            "ignore_errors = true)",
            [str(path)],
        )
        rows += con.execute(f"SELECT count(*) FROM t{k}").fetchone()[0]
    con.execute("CHECKPOINT")
    con.close()
    return rows


def run_ndjson(work: Path, args: argparse.Namespace, sampler: RssSampler) -> int:
    print(f"raw-ingest benchmark (NDJSON), work dir {work}", flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    landing = generate_ndjson(work, args.persons)
    generation_s = time.perf_counter() - started
    batch = sorted(p.name for p in (landing / NDJSON_SOURCE).iterdir())[0]
    files = sorted(p for p in (landing / NDJSON_SOURCE / batch).rglob("*.ndjson*"))
    size = sum(p.stat().st_size for p in files)
    lines = sum(_count_lines(p) for p in files)
    source = load_registry().get(NDJSON_SOURCE)
    reports = []

    def rwe_phase() -> int:
        report = _ingest(work / "lake_rwe", landing, source, batch, args.profile)
        reports.append(report)
        return sum(f.total_stored for f in report.files)

    rwe = measure("a. rwe ingest_batch", sampler, rwe_phase)
    baseline = measure(
        "b. DuckDB read_json_objects", sampler, lambda: run_duckdb_ndjson(files, work / "bare.duckdb")
    )
    quarantined = sum(f.rows_quarantined for f in reports[0].files)
    print()
    print(f"date      {datetime.now(UTC).astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine   {machine()}")
    print(
        f"software  Python {platform.python_version()}, duckdb {duckdb.__version__}, deltalake {deltalake.__version__}"
    )
    loads = " ".join(f"{x:.2f}" for x in load_before), " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load avg  {loads[0]} before, {loads[1]} after (1/5/15 min; other processes skew wall times)")
    print(f"files     {len(files)} NDJSON files of {NDJSON_SOURCE}/{batch}, {args.persons:,} persons: ")
    print(f"          {size / 1e6:,.1f} MB, {lines:,} lines; generated in {generation_s:.1f} s")
    print()
    print_table([rwe, baseline], size)
    print()
    print(
        f"ratio rwe / DuckDB: {rwe.seconds / baseline.seconds:.2f}x wall time, "
        f"{rwe.cpu_seconds / baseline.cpu_seconds:.2f}x CPU time"
    )
    print(
        f"rwe: {rwe.rows:,} rows stored + {quarantined:,} lines quarantined; DuckDB kept {baseline.rows:,} lines"
    )
    problems = [f"rwe: {f.relative_path} failed: {f.error}" for f in reports[0].failed]
    if rwe.rows + quarantined != lines:
        problems.append(f"rows stored + quarantined ({rwe.rows + quarantined:,}) != lines read ({lines:,})")
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("OK: every line stored or quarantined")
    return 1 if problems else 0


def _count_lines(path: Path) -> int:
    from rwe_assets.lib.raw_ingest import scan_file

    return scan_file(path, path.name).lines


def _ingest(lake_dir: Path, landing: Path, source, batch: str, profile: bool):
    if not profile:
        return ingest_batch(lake_dir, landing, source, batch)
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    report = profiler.runcall(ingest_batch, lake_dir, landing, source, batch)
    print("\ncProfile of ingest_batch (top 25 by own time; native calls count as one entry):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="CSV size in GB (10^9 bytes); default 2")
    parser.add_argument("--workdir", type=Path, help="parent of the work dir (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (CSV and both lakes)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run ingest_batch under cProfile (slows it; times are then off)",
    )
    parser.add_argument("--ndjson", action="store_true", help="FHIR bulk NDJSON instead of one CSV")
    parser.add_argument("--persons", type=int, default=10_000, help="with --ndjson: persons generated")
    args = parser.parse_args(argv)
    parent = args.workdir or Path(tempfile.gettempdir())
    if in_repo(parent):
        parser.error(f"--workdir must be outside the repository ({REPO}): the CSV is gigabytes")
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rwe-bench-", dir=parent))
    sampler = RssSampler()
    sampler.start()
    try:
        return run_ndjson(work, args, sampler) if args.ndjson else run(work, args, sampler)
    finally:
        sampler.stop()
        if args.keep:
            print(f"kept work dir: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace, sampler: RssSampler) -> int:
    landing = work / "landing"
    csv_path = landing / SOURCE / BATCH_ID / f"{ENTITY}.csv"
    print(f"raw-ingest benchmark, work dir {work}", flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    generated = generate_csv(csv_path, int(args.size_gb * 1e9))
    generation_s = time.perf_counter() - started
    size = csv_path.stat().st_size

    rwe_lake = work / "lake_rwe"
    problems: list[str] = []

    def rwe_phase() -> int:
        rows, found = run_rwe(rwe_lake, landing, args.profile)
        problems.extend(found)
        return rows

    rwe = measure("a. rwe ingest_batch", sampler, rwe_phase)
    raw_table = rwe_lake / "raw" / SOURCE / ENTITY
    rwe_table_rows = delta_rows(raw_table)
    raw_columns = [f.name for f in DeltaTable(str(raw_table)).schema().fields]
    missing = [c for c in PROVENANCE_COLUMNS if c not in raw_columns]

    baseline_target = work / "lake_baseline" / ENTITY
    how: list[str] = []

    def baseline_phase() -> int:
        rows, used = run_baseline(csv_path, baseline_target)
        how.append(used)
        return rows

    baseline = measure("b. polars -> Delta baseline", sampler, baseline_phase)
    baseline.note = how[0]

    print()
    print(f"date      {datetime.now(UTC).astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine   {machine()}")
    print(
        f"software  Python {platform.python_version()}, polars {pl.__version__}, "
        f"deltalake {deltalake.__version__}, duckdb {duckdb.__version__}"
    )
    loads = " ".join(f"{x:.2f}" for x in load_before), " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load avg  {loads[0]} before, {loads[1]} after (1/5/15 min; other processes skew wall times)")
    print(f"file      {csv_path.name}: {size / 1e9:.2f} GB ({size:,} bytes), {generated:,} data rows")
    print(f"          generated in {generation_s:.1f} s ({size / 1e6 / generation_s:.0f} MB/s); page-cached")
    print(f"baseline  {baseline.note}")
    print()
    print_table([rwe, baseline], size)
    print()
    print(
        f"ratio rwe / baseline: {rwe.seconds / baseline.seconds:.2f}x wall time, "
        f"{rwe.cpu_seconds / baseline.cpu_seconds:.2f}x CPU time"
    )
    print(f"rwe raw table: {rwe_table_rows:,} rows; provenance columns: {', '.join(PROVENANCE_COLUMNS)}")

    if rwe.rows != baseline.rows or rwe.rows != generated or rwe_table_rows != generated:
        problems.append(
            f"row counts differ: generated {generated:,}, rwe reported {rwe.rows:,}, "
            f"rwe table {rwe_table_rows:,}, baseline table {baseline.rows:,}"
        )
    if missing:
        problems.append(f"rwe raw table lacks provenance columns: {', '.join(missing)}")
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("OK: same row count in both tables; provenance columns present")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
