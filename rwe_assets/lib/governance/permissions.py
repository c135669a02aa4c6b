"""File modes: what holds PII or tokens is owner-only; what analysts open is readable by their group.

The lake (raw, quarantine, staging, linkage, audit) holds names, addresses, identifiers and keyed
tokens, and Dagster's storage holds run logs about it: directories 0700, files 0600. The published CDM,
the de-identified extract and the small-cell-suppressed results are for analysts: the warehouse
folder 0750 and those files 0640 (SHARED_WAREHOUSE_FILES), group RWE_ANALYST_GROUP when set (else
the owner's group). The data directory itself is 0750 so the group can reach the warehouse; the
landing folder loses the others' bits, and rwe.env is 0600 already.

Why both a private directory and private files: a 0700 directory already stops others reaching the
files below it, whatever their modes; the file modes keep a copy (backup, `cp -p`) private too.
The raw ingest and the audit trail create the lake root through ensure_private_dir and write under
private_umask (the Delta writer takes the process umask); apply() sets the modes of everything else
after a build.
"""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rwe_assets.errors import ConfigError
from rwe_assets.lib.truth_files import TRUTH_DIR
from rwe_assets.lib.warehouse_files import DEID_FILE, DQD_JSON_FILE, PLOTS_DIR, PUBLISHED

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
SHARED_DIR, SHARED_FILE = 0o750, 0o640
# What analysts open in the warehouse: the published CDM, the de-identified extract and the
# small-cell-suppressed results (DQD export, survival plots). Everything else there (build.duckdb,
# the vocabulary store) stays owner-only.
SHARED_WAREHOUSE_FILES = (PUBLISHED, DEID_FILE, DQD_JSON_FILE, PLOTS_DIR)
# Folders of the data directory that hold PII, tokens or logs about them.
PRIVATE_FOLDERS = ("lake", "dagster_home", TRUTH_DIR)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents below an existing folder) as 0700; an existing folder is
    made 0700 too."""
    if not isinstance(path, str | os.PathLike):
        return path  # a lake on object storage (lib/lake.LakeUri): no folders; access is the bucket's
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in {path, *missing}:
        os.chmod(folder, PRIVATE_DIR)
    return path


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created in the block are owner-only (umask 077), whatever library creates
    them (the Delta writer takes the process umask). The umask is per process: another thread that
    creates a file meanwhile gets it owner-only too, which errs on the private side."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(root: Path) -> int:
    """Set 0700 on every folder and 0600 on every file under `root` (itself included); returns how
    many modes changed. Symbolic links are not followed."""
    root = Path(root)
    if not root.exists() or root.is_symlink():
        return 0
    changed = _set_mode(root, PRIVATE_DIR)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            changed += _set_mode(Path(folder, name), PRIVATE_DIR)
        for name in files:
            changed += _set_mode(Path(folder, name), PRIVATE_FILE)
    return changed


def share_with_analysts(path: Path, group: str | None) -> None:
    """Make a published file readable by the analyst group: 0640 (0750 for a folder), chgrp to
    `group` when given. The owner must belong to the group (ConfigError otherwise)."""
    path = Path(path)
    if group:
        gid = _group_id(group)
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            raise ConfigError(
                f"RWE_ANALYST_GROUP={group}: this user cannot give {path.name} to that group "
                f"(add the user to the group: usermod -aG {group} $USER)"
            ) from None
    os.chmod(path, SHARED_DIR if path.is_dir() else SHARED_FILE)


def apply(data_dir: Path, analyst_group: str | None = None) -> dict[str, int]:
    """The modes of a whole data directory, as the module docstring says; returns counts by part.
    The landing zone belongs to the sites that send files: only its folder loses the others' bits
    (its group bits stay for a senders' group); what is inside is left to the operator."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return {}
    counts = {"private_modes_changed": 0, "shared_files": 0}
    share_with_analysts(data_dir, analyst_group)
    landing = data_dir / "landing"
    if landing.is_dir() and not landing.is_symlink() and _mode(landing) & 0o007:
        # the analyst group can enter the data directory: landed PII must not be open to others
        os.chmod(landing, _mode(landing) & ~0o007)
        counts["private_modes_changed"] += 1
    for name in PRIVATE_FOLDERS:
        counts["private_modes_changed"] += make_private(data_dir / name)
    warehouse = data_dir / "warehouse"
    if warehouse.is_dir():
        counts["private_modes_changed"] += make_private(warehouse)
        share_with_analysts(warehouse, analyst_group)
        for name in SHARED_WAREHOUSE_FILES:
            path = warehouse / name
            if path.is_symlink() or not path.exists():
                continue
            for shared in [path, *(path.iterdir() if path.is_dir() else ())]:
                share_with_analysts(shared, analyst_group)
                counts["shared_files"] += 1
    return counts


def loose_paths(root: Path) -> list[Path]:
    """Paths under `root` that group or others can read, write or enter (what a check reports)."""
    root = Path(root)
    if not root.exists():
        return []
    found = [root] if root.stat().st_mode & 0o077 else []
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder, name)
            if not path.is_symlink() and path.stat().st_mode & 0o077:
                found.append(path)
    return found


def mode_problems(data_dir: Path) -> list[str]:
    """What apply() would fix, as 'path mode' lines relative to the data directory: anything in the
    lake, Dagster's storage folder or the truth folder open to group or others; the data directory,
    the warehouse and the landing folder open to others; a warehouse file other than the published
    ones open to the group, a published one open to others."""
    data_dir = Path(data_dir)
    found = [p for p in loose_paths(data_dir / "lake")]
    found += [p for p in (data_dir / "dagster_home", data_dir / TRUTH_DIR) if p.exists() and _mode(p) & 0o077]
    found += [
        p for p in (data_dir, data_dir / "warehouse", data_dir / "landing") if p.exists() and _mode(p) & 0o007
    ]
    warehouse = data_dir / "warehouse"
    if warehouse.is_dir():
        for path in warehouse.rglob("*"):
            shared = path.relative_to(warehouse).parts[0] in SHARED_WAREHOUSE_FILES
            if not path.is_symlink() and _mode(path) & (0o007 if shared else 0o077):
                found.append(path)
    return [f"{p.relative_to(data_dir).as_posix() or '.'} {_mode(p):04o}" for p in found]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _set_mode(path: Path, mode: int) -> int:
    if path.is_symlink() or _mode(path) == mode:
        return 0
    os.chmod(path, mode)
    return 1


def _group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(
            f"RWE_ANALYST_GROUP={group}: no such group on this host (create it: groupadd {group})"
        ) from None
