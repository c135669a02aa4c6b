from rwe_assets.defs.linkage.assets import linkage_assets

__all__ = ["linkage_assets"]
