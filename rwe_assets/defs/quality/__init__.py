from rwe_assets.defs.quality.assets import DQ_RESULTS, quality_assets

__all__ = ["DQ_RESULTS", "quality_assets"]
