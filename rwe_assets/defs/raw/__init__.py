from rwe_assets.defs.raw.assets import build_raw_assets, raw_key
from rwe_assets.defs.raw.sensors import build_landing_sensor

__all__ = ["build_landing_sensor", "build_raw_assets", "raw_key"]
