"""The working state of fill.py: the encounters as rules read them (Visits) and the rows the rules
emit into each event table (Content)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue
from rwe_assets.synthetic.clinical.timeline import Prepared
from rwe_assets.synthetic.membership import Membership
from rwe_assets.synthetic.population import Persons


@dataclass
class Visits:
    """Encounters sorted by (person, start), one value per encounter, and what rules derive."""

    person: np.ndarray
    start: np.ndarray  # seconds
    stop: np.ndarray
    etype: np.ndarray
    kind: np.ndarray  # Kind
    reason: np.ndarray  # condition, -1
    site: np.ndarray  # SITE_*
    record: np.ndarray
    claim: np.ndarray
    claim_record: np.ndarray
    day: np.ndarray
    age: np.ndarray  # years
    sex: np.ndarray
    ehr: np.ndarray  # bool: held by an EHR site
    hi: np.ndarray  # last day of the person's life in the window
    active: dict[int, np.ndarray]  # condition index -> bool: onset on or before the visit


class Content:
    """The rows every rule emits, per event table, concatenated once at the end."""

    def __init__(
        self, rng, persons: Persons, membership: Membership, prepared: Prepared, catalogue: Catalogue
    ):
        self.rng, self.persons, self.membership = rng, persons, membership
        self.prepared, self.catalogue = prepared, catalogue
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {}

    def emit(self, table: str, **columns) -> None:
        lengths = {len(np.atleast_1d(v)) for v in columns.values() if np.ndim(v) > 0}
        if not lengths or max(lengths) == 0:
            return
        m = max(lengths)
        self.parts.setdefault(table, []).append(
            {
                k: (np.broadcast_to(v, (m,)).copy() if np.ndim(v) == 0 else np.asarray(v))
                for k, v in columns.items()
            }
        )

    def collect(self, table: str, keys: dict[str, type]) -> dict[str, np.ndarray]:
        parts = self.parts.get(table, [])
        if not parts:
            return {k: np.zeros(0, dtype=t) for k, t in keys.items()}
        return {k: np.concatenate([p[k] for p in parts]).astype(t) for k, t in keys.items()}

    def panel(self, rows, key: str) -> None:
        self.emit("panel", enc=rows, panel=self.catalogue.panel(key).index)

    def procedure(self, rows, key: str, why=-1) -> None:
        self.emit("proc", enc=rows, proc=self.catalogue.procedure(key).index, reason=why)
