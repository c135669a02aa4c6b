from rwe_assets.defs.publish.assets import publish_assets

__all__ = ["publish_assets"]
