from rwe_assets.defs.governance.assets import AUDIT_TRAIL, governance_assets, governance_checks
from rwe_assets.defs.governance.extract import extract_assets

__all__ = ["AUDIT_TRAIL", "extract_assets", "governance_assets", "governance_checks"]
