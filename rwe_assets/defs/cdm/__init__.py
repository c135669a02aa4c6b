from rwe_assets.defs.cdm.assets import cdm_assets

__all__ = ["cdm_assets"]
