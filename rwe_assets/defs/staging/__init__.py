from rwe_assets.defs.staging.assets import build_staging_assets

__all__ = ["build_staging_assets"]
