"""Tiny generated populations, shared by the synthetic tests (generated once per module run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe_assets.synthetic import GenerationReport, NoiseConfig, generate

# noisier and richer than the defaults so that tens of persons still hold every kind of noise,
# BRCA carriers and lab samples
NOISY = NoiseConfig(
    malformed_row_share=0.01,
    invalid_date_share=0.01,
    unmapped_code_share=0.03,
    duplicate_rate=0.08,
    typo_rate=0.1,
    pathogenic_variant_rate=0.25,
    lab_test_rate=0.25,
    twin_rate=0.5,
)


class Population:
    def __init__(self, out: Path, report: GenerationReport):
        self.out = out
        self.report = report
        self.landing = out / "landing"
        self.truth = out / "truth"
        self.batch = report.batches[0]

    def folder(self, source: str) -> Path:
        return self.landing / source / self.batch


@pytest.fixture(scope="session")
def population(tmp_path_factory) -> Population:
    out = tmp_path_factory.mktemp("synthetic_noisy")
    return Population(out, generate(out, 80, seed=11, config=NOISY, chunk_size=30))


@pytest.fixture(scope="session")
def clean_population(tmp_path_factory) -> Population:
    out = tmp_path_factory.mktemp("synthetic_clean")
    return Population(out, generate(out, 40, seed=5, config=NoiseConfig.clean()))
