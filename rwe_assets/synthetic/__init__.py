"""A deterministic synthetic multi-source population with ground truth (see docs/synthetic.md).

    from rwe_assets.synthetic import NoiseConfig, generate
    report = generate("out", persons=1_000, seed=7)

Pure Python, numpy and polars; no Dagster import.
"""

from rwe_assets.synthetic.config import NoiseConfig
from rwe_assets.synthetic.generator import generate
from rwe_assets.synthetic.report import FileStats, GenerationReport

__all__ = ["FileStats", "GenerationReport", "NoiseConfig", "generate"]
