"""Commands on the data directory: the keys (`rwe init`), `rwe clean`, `rwe sql`, the Dagster home
inside it, and the warning about what in the landing zone is never read."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rwe_assets.cli.demo import demo_batches
from rwe_assets.cli.exit_codes import REFUSED
from rwe_assets.lib.truth_files import TRUTH_DIR
from rwe_assets.settings import REPO_DIR, Settings

DAGSTER_CONFIG = "dagster.yaml"  # the repository's, copied into DAGSTER_HOME


def prepare_dagster_home(settings: Settings) -> Path:
    """Dagster keeps runs and events in DAGSTER_HOME: by default <data>/dagster_home, so one data
    directory has one Dagster instance whatever the working directory (two homes over one lake would
    not see each other's runs). Seeded with the repository's dagster.yaml (telemetry off, pools)."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(settings.default_dagster_home)
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / DAGSTER_CONFIG
    if not config.exists():
        shutil.copyfile(REPO_DIR / DAGSTER_CONFIG, config)
    return home


def report_landing(settings: Settings) -> list[str]:
    """Say what in the landing zone is never read: folders no source declares, and entries of a source's
    folder that are no batch (bad names, symlinks, paths resolving outside the landing zone)."""
    from rwe_assets.lib.landing import invalid_batches
    from rwe_assets.lib.sources import load_registry, unknown_landing_folders

    registry = load_registry()
    unknown = unknown_landing_folders(settings.landing_dir, registry)
    for name in unknown:
        print(
            f"warning: landing/{name} is not a source in the registry and is not read "
            f"(declare it in {settings.user_sources_file}, or move its batches to landing/<source>/)",
            file=sys.stderr,
        )
    for entry in invalid_batches(settings.landing_dir, registry):
        print(f"warning: {entry.describe()}", file=sys.stderr)
    return unknown


def init_keys(settings: Settings) -> int:
    from rwe_assets.lib.linkage_key import write_new_key

    if os.environ.get("RWE_LINKAGE_KEY"):
        print("RWE_LINKAGE_KEY is set in the environment: it is used, nothing written")
        return 0
    try:
        path = write_new_key(settings)
    except FileExistsError:
        print(f"{settings.env_file} exists: kept as it is (a new key would make earlier tokens unmatchable)")
        return 0
    print(
        f"wrote a new secret linkage key and tombstone key to {path} (mode 0600); the `rwe` command and the UI read it"
    )
    print("keep it with the data: records linked with it can only be re-linked with the same key")
    return 0


def clean_data_dir(settings: Settings, everything: bool = False) -> int:
    """Remove what can be rebuilt (lake, warehouse, the default Dagster home, ground truth) and the demo's
    landed batches; with `everything`, the whole landing zone too. rwe.env (the key) and sources.yaml are
    configuration and stay: a key removed by accident makes a kept lake unlinkable."""
    landed = [settings.landing_dir] if everything else demo_batches(settings)
    derived = [
        *([settings.lake_dir] if isinstance(settings.lake_dir, Path) else []),  # a bucket is not cleaned
        settings.warehouse_dir,
        settings.default_dagster_home,
        settings.data_dir / TRUTH_DIR,
    ]
    for path in [*landed, *derived, settings.data_dir / ".generating"]:
        if path.is_dir():
            shutil.rmtree(path)
            print(f"removed {path}")
        elif path.exists():
            path.unlink()
            print(f"removed {path}")
    if not everything and settings.landing_dir.is_dir():
        kept = sorted(
            p.relative_to(settings.landing_dir).as_posix() for p in settings.landing_dir.glob("*/*")
        )
        if kept:
            print(
                f"kept your landed batches ({len(kept)}): {', '.join(kept[:5])}{' ...' if len(kept) > 5 else ''}"
            )
    return 0


def published_path(settings: Settings) -> Path:
    from rwe_assets.lib.publish import PUBLISHED

    return settings.warehouse_dir / PUBLISHED


def duckdb_cli() -> Path:
    """The DuckDB shell installed with the project (the duckdb-cli package), beside this interpreter."""
    return Path(sys.executable).parent / "duckdb"


def open_sql(database: Path) -> int:
    """Replace this process with the DuckDB shell on `database`, read-only (the pipeline may be writing
    a new build beside it; the published file is only ever swapped, never written in place)."""
    if not database.exists():
        print(f"rwe sql: {database} does not exist yet: run the demo or an ingest first", file=sys.stderr)
        return REFUSED
    shell = duckdb_cli()
    if not shell.exists():
        print(f"rwe sql: no DuckDB shell at {shell}: install the project's dependencies", file=sys.stderr)
        return REFUSED
    os.execv(shell, [str(shell), "-readonly", str(database)])
    return 0  # not reached
