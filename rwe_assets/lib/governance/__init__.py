"""Governance: the audit trail (audit.py), file modes (permissions.py), retention (retention.py),
erasure (erase.py) and the de-identified extract (extract.py)."""
