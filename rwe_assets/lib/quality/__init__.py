"""Data quality of the OMOP CDM. ``rwe_assets.lib.quality.dqd``: the OHDSI Data Quality Dashboard v5.4
checks, generated from the packaged catalogue (see docs/data-quality.md)."""
