"""Analytics on the CDM: characterization, cohorts, incidence and survival."""

from rwe_assets.defs.analytics.characterization import characterization_assets

__all__ = ["characterization_assets"]
