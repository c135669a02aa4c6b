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

import json
import os
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib import truth_files
from rwe_assets.synthetic.chunks import batch_names, chunk_plan, results
from rwe_assets.synthetic.config import DEFAULT_CHUNK, NoiseConfig
from rwe_assets.synthetic.landing_files import LANDING_DIR, Sink, write_result
from rwe_assets.synthetic.report import FileStats, GenerationReport
from rwe_assets.synthetic.truth import truth_sinks, write_counts


def _check_arguments(out: Path, persons: int, batches: int, chunk_size: int) -> None:
    if persons < 1:
        raise ConfigError(f"generate: expected at least 1 person, found {persons}")
    if not 1 <= batches <= persons:
        raise ConfigError(f"generate: expected 1 to {persons} batches, found {batches}")
    if chunk_size < 1:
        raise ConfigError(f"generate: expected a chunk size of at least 1, found {chunk_size}")
    for folder in (out / LANDING_DIR, out / truth_files.TRUTH_DIR):
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"generate: expected an empty output folder, found files in {folder}")


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
    out = Path(out_dir)
    _check_arguments(out, persons, batches, chunk_size)
    truth = out / truth_files.TRUTH_DIR
    report = GenerationReport(persons, seed, batch_names(batches), chunk_size, compress, config.as_dict())
    sinks: dict[tuple[str, str, str], Sink] = {}
    stats: dict[tuple[str, str, str], FileStats] = {}
    truths = truth_sinks(truth)
    try:
        for result in results(seed, chunk_plan(persons, batches, chunk_size), config, workers, compress):
            write_result(out, result, sinks, stats, truths, report, compress)
    finally:
        for sink in [*sinks.values(), *truths.values()]:
            sink.close()
    for sink in truths.values():  # a truth file exists even when no chunk wrote to it
        if sink.handle is None and not sink.path.exists():
            sink.write(b"")
            sink.close()
    report.files = [stats[k] for k in sorted(stats)]
    write_counts(truth / truth_files.EXPECTED_COUNTS, report.files)
    (truth / truth_files.REPORT).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    return report
