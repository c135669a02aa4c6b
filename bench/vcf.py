"""VCF raw-ingest throughput: rwe_assets' VCF ingest against a bare cyvcf2 loop over the same fields.

    python bench/vcf.py [--records 1000000] [--samples 100] [--workdir DIR] [--keep] [--cyvcf2-path]

1. Writes a bgzipped multi-sample VCF 4.2 (--records x --samples; GT:AD:DP:GQ, biallelic SNVs on
   chr01..chr22, INFO with AC/AN/AF/GENE/HGVSC/CLNSIG; about 90% hom-ref, 8% het, 1.5% hom-alt, 0.5%
   no-call genotypes) as landing/lab/bench_batch/run.vcf.gz. Every line has a fixed width, so whole
   chunks of lines are built as numpy byte matrices (no per-line Python), then BGZF-compressed with
   the generator's BGZF writer.
2. In this process, one after the other (the file is in the page cache for both):
   a. bare: a cyvcf2 loop reading CHROM, POS, ID, REF, ALT, QUAL, FILTER, every INFO item, the
      genotype array, DP, AD and GQ of every record, counting non-ref calls per (record, sample, ALT
      allele) with the same vectorized rule; nothing is stored.
   b. rwe: rwe_assets.lib.raw_ingest.ingest_batch of the batch into a fresh lake (sha256 of the file,
      the same reading, Arrow batches with provenance, the Delta write of raw/lab/variant_call and
      raw/lab/vcf_header, the manifest row).
   c. with --cyvcf2-path, b again with the reader's cyvcf2 path only (vcf_reader.TEXT_PATH_MIN_BYTES
      raised above the file's size): the reader before its text path, for comparison.
   Each phase prints wall time, CPU time (user + system of the process, every thread), variant
   calls/s, records/s and peak RSS (VmRSS sampled every 20 ms during the phase), then the ratio
   rwe/bare of calls per second (goal: >= 0.80) and the same ratio for CPU time (bare CPU / rwe CPU).
3. Exits 1 when the two phases count different calls or the ingest did not reconcile.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cyvcf2
import numpy as np

from rwe_assets.lib import lake
from rwe_assets.lib.genomics import vcf_reader
from rwe_assets.lib.genomics.vcf_calls import count_non_ref
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.synthetic.formats.lab import BGZF_EOF, bgzf

SEED = 20_261_108
CHUNK_RECORDS = 20_000
SAMPLE_INTERVAL_S = 0.02
# Genotype cells of fixed width (GT:AD:DP:GQ, two-digit numbers) and their probabilities.
CELLS = (
    (b"0/0:30,00:30:99", 0.900),
    (b"0/1:15,15:30:99", 0.040),
    (b"0|1:14,16:30:90", 0.040),
    (b"1/1:00,30:30:95", 0.015),
    (b"./.:00,00:00:00", 0.005),
)
GENES = (b"BRCA1", b"BRCA2", b"CFTR_", b"HFE__", b"APOE_", b"MTHFR", b"F5___", b"TP53_")
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def header(samples: int) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh38",
        # two-digit names keep every line the same width
        *(f"##contig=<ID=chr{n:02d},length=250000000,assembly=GRCh38>" for n in range(1, 23)),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene symbol">',
        '##INFO=<ID=HGVSC,Number=A,Type=String,Description="HGVS c.">',
        '##INFO=<ID=CLNSIG,Number=A,Type=String,Description="ClinVar significance">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        "#"
        + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"])
        + "".join(f"\tS{i:06d}" for i in range(samples)),
    ]
    return ("\n".join(lines) + "\n").encode()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers as a (n, width) uint8 matrix, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + 48).astype(np.uint8)


def _text(*parts: np.ndarray | bytes, rows: int) -> np.ndarray:
    """Concatenate fixed-width byte columns (matrices or constants) into one (rows, width) matrix."""
    columns = [
        np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (rows, len(p))) if isinstance(p, bytes) else p
        for p in parts
    ]
    return np.hstack(columns)


def body_chunk(first: int, rows: int, samples: int, total: int, rng: np.random.Generator) -> bytes:
    """Lines first .. first+rows-1 of `total`, sorted: chr01..chr22 in equal runs, 9-digit positions."""
    number = np.arange(first, first + rows, dtype=np.int64)
    chrom = _digits(number * 22 // total + 1, 2)
    pos = _digits(10_000_000 + number * 7, 9)
    ref_code = rng.integers(0, 4, rows)
    alt_code = (ref_code + rng.integers(1, 4, rows)) % 4
    cells_text = np.frombuffer(b"".join(c for c, _ in CELLS), dtype=np.uint8).reshape(len(CELLS), -1)
    choice = rng.choice(len(CELLS), size=(rows, samples), p=[p for _, p in CELLS])
    tab_cells = np.hstack([np.full((len(CELLS), 1), ord("\t"), np.uint8), cells_text])
    genotypes = tab_cells[choice].reshape(rows, -1)
    gene = np.frombuffer(b"".join(GENES), dtype=np.uint8).reshape(len(GENES), -1)[number % len(GENES)]
    ac = np.minimum(np.count_nonzero(choice == 1, axis=1) + np.count_nonzero(choice == 2, axis=1), 999)
    line = _text(
        b"chr", chrom, b"\t", pos, b"\t.\t", BASES[ref_code][:, None], b"\t", BASES[alt_code][:, None],
        b"\t50\tPASS\tAC=", _digits(ac, 3), f";AN={2 * samples:06d};AF=0.".encode(),
        _digits(rng.integers(0, 1000, rows), 3), b";GENE=", gene, b";HGVSC=c.", _digits(number % 9999, 4),
        b"A>G;CLNSIG=Benign\tGT:AD:DP:GQ", genotypes, b"\n", rows=rows,
    )  # fmt: skip
    return line.tobytes()


def write_vcf(path: Path, records: int, samples: int) -> int:
    """Write the benchmark VCF (BGZF); returns its size in bytes."""
    rng = np.random.default_rng(SEED)
    with open(path, "wb") as out:
        out.write(bgzf(header(samples))[: -len(BGZF_EOF)])
        for first in range(0, records, CHUNK_RECORDS):
            rows = min(CHUNK_RECORDS, records - first)
            out.write(bgzf(body_chunk(first, rows, samples, records, rng), level=1)[: -len(BGZF_EOF)])
        out.write(BGZF_EOF)
    return path.stat().st_size


# --------------------------------------------------------------------------- measuring


class PeakRss:
    """Peak VmRSS of this process while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.peak, self._stop = _rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bare_loop(path: Path) -> tuple[int, int]:
    """The same fields through cyvcf2 with nothing stored; returns (records, non-ref calls)."""
    vcf = cyvcf2.VCF(str(path))
    records = calls = 0
    genotypes = []
    for variant in vcf:
        _ = (variant.CHROM, variant.POS, variant.ID, variant.REF, variant.ALT, variant.QUAL)
        _ = (variant.FILTERS, list(variant.INFO))
        _ = (variant.format("DP"), variant.format("AD"), variant.format("GQ"))
        genotypes.append(variant.genotype.array())
        records += 1
        if len(genotypes) == CHUNK_RECORDS:
            calls += count_non_ref(genotypes)
            genotypes = []
    if genotypes:
        calls += count_non_ref(genotypes)
    vcf.close()
    return records, calls


def timed(name: str, work: Callable[[], tuple[int, int]]) -> tuple[float, int, int, int, float]:
    gc.collect()
    with PeakRss() as rss:
        start, start_cpu = time.perf_counter(), time.process_time()
        records, calls = work()
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(
        f"{name:>6}  {wall:8.1f} s  CPU {cpu:8.1f} s  {calls / wall:12,.0f} calls/s"
        f"  {records / wall:10,.0f} records/s  {calls:12,} calls  peak RSS {rss.peak / 2**20:7,.0f} MiB",
        flush=True,
    )
    return wall, records, calls, rss.peak, cpu


def rwe_ingest(work_dir: Path) -> tuple[int, int]:
    lake_dir = work_dir / "lake"
    shutil.rmtree(lake_dir, ignore_errors=True)
    report = ingest_batch(lake_dir, work_dir / "landing", load_registry().get("lab"), "bench_batch")
    (result,) = report.files
    if result.error or not result.reconciles:
        raise SystemExit(f"rwe ingest failed or did not reconcile: {result.error}")
    header = lake.read_table(lake.table_path(lake_dir, "raw", "lab", "vcf_header")).to_pylist()
    counts = {row["item_id"]: int(row["number"]) for row in header if row["section"] == "count"}
    return counts["records"], result.records_read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the scratch dir")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    parser.add_argument("--cyvcf2-path", action="store_true", help="also time the reader's cyvcf2 path")
    args = parser.parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="rwe-bench-vcf-", dir=args.workdir))
    try:
        folder = work_dir / "landing" / "lab" / "bench_batch"
        folder.mkdir(parents=True)
        start = time.perf_counter()
        size = write_vcf(folder / "run.vcf.gz", args.records, args.samples)
        print(
            f"wrote {args.records:,} records x {args.samples} samples, {size / 1e6:,.1f} MB BGZF "
            f"in {time.perf_counter() - start:.1f} s ({work_dir})",
            flush=True,
        )
        bare = timed("bare", lambda: bare_loop(folder / "run.vcf.gz"))
        rwe = timed("rwe", lambda: rwe_ingest(work_dir))
        if (bare[1], bare[2]) != (rwe[1], rwe[2]):
            print(f"MISMATCH: bare read {bare[1:3]} (records, calls), rwe {rwe[1:3]}")
            return 1
        print(
            f"ratio rwe/bare calls per second: {bare[0] / rwe[0]:.2f} wall (goal >= 0.80), "
            f"{bare[4] / rwe[4]:.2f} CPU"
        )
        if args.cyvcf2_path:
            vcf_reader.TEXT_PATH_MIN_BYTES = size + 1
            old = timed("cyvcf2", lambda: rwe_ingest(work_dir))
            print(f"ratio cyvcf2 path/bare: {bare[0] / old[0]:.2f} wall, {bare[4] / old[4]:.2f} CPU")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
