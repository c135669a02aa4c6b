"""Which key links: RWE_LINKAGE_KEY, or the public demo key on demo data only; and which key keys the
erasure tombstones (tombstone_key).

Demo data (docs/linkage.md, "Keys and demo mode"): every file under <data>/landing is either listed
in the generator's <data>/truth/expected_counts.csv (with truth/report.json beside it) or is
byte-identical (sha256) to a file of the bundled sample in the repository's data/sample/. One other
file and the demo key is refused. The check guards against linking real data with a public key by
mistake; whoever can write the data directory can also set a key, so it is not a defence against
deliberate misuse.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib import truth_files

DEMO_KEY = "rwe-assets-DEMO-linkage-key-NOT-SECRET"
MIN_KEY_BYTES = 16
TOMBSTONE_KEY_VARIABLE = "RWE_TOMBSTONE_KEY"
REPO_SAMPLE_DIR = Path(__file__).resolve().parents[3] / "data" / "sample"


@dataclass(frozen=True)
class LinkageKey:
    value: str
    demo: bool


def resolve_key(configured: str | None, data_dir: Path, sample_dir: Path = REPO_SAMPLE_DIR) -> LinkageKey:
    if configured:
        return LinkageKey(_long_enough("RWE_LINKAGE_KEY", configured), demo=False)
    foreign = non_demo_files(Path(data_dir), sample_dir)
    if foreign:
        raise ConfigError(
            "RWE_LINKAGE_KEY is not set and the landing zone holds files that are neither generated demo "
            f"data nor the bundled sample ({len(foreign)} files, e.g. {foreign[0]}): set a secret key "
            "to link them"
        )
    return LinkageKey(DEMO_KEY, demo=True)


def tombstone_key(settings) -> str:
    """The key of erasure tombstones: RWE_TOMBSTONE_KEY, else the linkage key resolve_key chooses.

    Tombstones cannot be re-keyed (the identities they refuse are gone), so they must outlive a key
    rotation: `rwe init` writes a tombstone key of its own, and `rwe rotate-key` keeps the old linkage
    key as RWE_TOMBSTONE_KEY when tombstones were made with it (lib/linkage/rotate.py).
    """
    if settings.tombstone_key:
        return _long_enough(TOMBSTONE_KEY_VARIABLE, settings.tombstone_key)
    return resolve_key(settings.linkage_key, settings.data_dir).value


def _long_enough(variable: str, key: str) -> str:
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ConfigError(f"{variable}: expected at least {MIN_KEY_BYTES} bytes, found {len(key.encode())}")
    return key


def non_demo_files(data_dir: Path, sample_dir: Path = REPO_SAMPLE_DIR) -> list[str]:
    """Landing files (relative paths) that are not demo data; [] when all are."""
    landing = data_dir / "landing"
    if not landing.exists():
        return []
    generated = generated_files(data_dir / truth_files.TRUTH_DIR)
    bundled = {sha256_file(p) for p in sample_dir.rglob("*") if p.is_file()} if sample_dir.exists() else set()
    foreign = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        relative = path.relative_to(data_dir).as_posix()
        if relative not in generated and sha256_file(path) not in bundled:
            foreign.append(relative)
    return foreign


def generated_files(truth_dir: Path) -> set[str]:
    listing = truth_dir / truth_files.EXPECTED_COUNTS
    if not listing.exists() or not (truth_dir / truth_files.REPORT).exists():
        return set()
    with listing.open() as handle:
        return {row["FILE"] for row in csv.DictReader(handle)}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
