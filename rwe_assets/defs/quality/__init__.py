from rwe_assets.defs.quality.assets import DQ_RESULTS, quality_assets
from rwe_assets.defs.quality.table_checks import table_checks

__all__ = ["DQ_RESULTS", "quality_assets", "table_checks"]
