"""What `rwe demo` lands: the bundled samples and a generated population; `rwe clean` removes the same."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from rwe_assets.lib.truth_files import EXPECTED_COUNTS, TRUTH_DIR
from rwe_assets.settings import REPO_DIR, Settings

SAMPLE_DIR = REPO_DIR / "data" / "sample"
# source -> bundled batch folder under data/sample/
SAMPLE_BATCHES = {"ehr_sample": "synthea27", "ehr_sample_fhir": "fhir13"}
# The demo's generated population: small enough to build in a minute, fixed so every demo is the same.
DEMO_PERSONS, DEMO_SEED = 2_000, 42


def demo_batches(settings: Settings) -> list[Path]:
    """The batch folders `rwe demo` landed: the bundled samples and the generated batches that the
    generator's ground truth lists (truth/expected_counts.csv)."""
    batches = {settings.landing_dir / source / batch for source, batch in SAMPLE_BATCHES.items()}
    listing = settings.data_dir / TRUTH_DIR / EXPECTED_COUNTS
    if listing.exists():
        with listing.open(encoding="utf-8") as handle:
            batches |= {settings.landing_dir / row["SOURCE"] / row["BATCH"] for row in csv.DictReader(handle)}
    return sorted(batches)


def land_sample(settings: Settings) -> None:
    for source, batch in SAMPLE_BATCHES.items():
        target = settings.landing_dir / source / batch
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(SAMPLE_DIR / batch, target)
            print(f"landed the bundled sample: {target}")


def land_generated_population(settings: Settings, persons: int = DEMO_PERSONS) -> None:
    """Generate the demo population (all four sources, ground truth beside) unless it has landed."""
    from rwe_assets.synthetic import generate

    if (settings.landing_dir / "ehr_site_a").exists():
        return
    staging = settings.data_dir / ".generating"  # hidden: the landing sensor ignores it
    shutil.rmtree(staging, ignore_errors=True)
    report = generate(staging, persons=persons, seed=DEMO_SEED)
    for batch in sorted((staging / "landing").glob("*/*")):  # whole batches, each moved by one rename
        target = settings.landing_dir / batch.parent.name / batch.name
        target.parent.mkdir(parents=True, exist_ok=True)
        batch.rename(target)
    shutil.rmtree(settings.data_dir / TRUTH_DIR, ignore_errors=True)
    (staging / TRUTH_DIR).rename(settings.data_dir / TRUTH_DIR)
    shutil.rmtree(staging)
    print(
        f"generated {persons} synthetic persons (seed {DEMO_SEED}) into {settings.landing_dir}; "
        f"ground truth in {settings.data_dir / 'truth'} ({report.rows_written} rows)"
    )
