"""The project's settings: one place, read from the environment, shared by the `rwe` command and
the Dagster code location.

| variable                    | default       | meaning                                                  |
|-----------------------------|---------------|----------------------------------------------------------|
| RWE_DATA_DIR                | ./data        | landing zone, lake and warehouse live below it           |
| RWE_LAKE_URI                | <data>/lake   | the Delta lake on S3-compatible storage, s3://bucket/    |
|                             |               | prefix (credentials, region, endpoint:                   |
|                             |               | AWS_* variables; docs/operations.md); the published CDM, |
|                             |               | the landing zone and the lock files stay in <data>       |
| RWE_VOCAB_DIR               | bundled vocab/| OMOP vocabulary files (Athena layout); default: the      |
|                             |               | demo subset shipped in the repository's vocab/ folder    |
| RWE_LINKAGE_KEY             | (unset)       | secret key for linkage tokens; never put it in the repo; |
|                             |               | `rwe init` writes one into <data>/rwe.env (below)        |
| RWE_TOMBSTONE_KEY           | the linkage   | secret key of erasure tombstones, never rotated; `rwe    |
|                             | key           | init` writes one (lib/linkage/keys.tombstone_key)        |
| RWE_SOURCES_FILE            | <data>/       | the user's source registry, added to the bundled one     |
|                             | sources.yaml  | (rwe_assets/lib/sources.py); absent file: none added     |
| RWE_DUCKDB_MEMORY_LIMIT     | 8GB           | DuckDB memory_limit of linkage, checks and tools         |
| RWE_STAGING_MEMORY_LIMIT    | 3GB           | DuckDB memory_limit of the staging build, which spills   |
|                             |               | past it to <lake>/_work (docs/operations.md)             |
| RWE_CDM_MEMORY_LIMIT        | 3GB           | DuckDB memory_limit of the CDM build, which spills past  |
|                             |               | it to <warehouse>/tmp (docs/operations.md)               |
| RWE_DUCKDB_THREADS          | CPU count     | DuckDB threads                                           |
| RWE_LANDING_SETTLE_SECONDS  | 10            | a batch is picked up once no file in it changed for this |
|                             |               | many seconds                                             |
| RWE_MIN_CELL_COUNT          | 5             | smallest count shown in results meant for sharing        |
|                             |               | (lib/analytics/disclosure.py)                            |
| RWE_RETENTION_DAYS          | 30            | days a superseded lake file and Delta log entry are kept |
|                             |               | (time travel) before governance/retention deletes them   |
| RWE_ANALYST_GROUP           | (unset)       | OS group given read access to the published CDM and the  |
|                             |               | de-identified extract (lib/governance/permissions.py);   |
|                             |               | unset: the owner's group                                 |

Relative paths resolve against the working directory.

The env file <data>/rwe.env (ENV_FILE_NAME) holds `RWE_NAME=value` lines for any variable above but
RWE_DATA_DIR (it lives inside the data directory, so it cannot move it). The environment wins over the
file. `rwe init` writes it with a fresh linkage key and mode 0600; because it may hold the key, a file
that group or others can read is refused, as ssh refuses a readable private key. The data directory is
git-ignored, so the key never reaches the repository. Both the `rwe` command and the code location
(through RweConfig) read it on every Settings.from_env, so a key written while the UI runs is used by the
next run without a restart.

DAGSTER_HOME (Dagster's own variable, run and event storage) defaults to <data>/dagster_home in the
`rwe` command: one data directory, one Dagster instance, whatever the working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rwe_assets.errors import ConfigError

if TYPE_CHECKING:
    from rwe_assets.lib.lake import LakeUri

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
ENV_FILE_NAME = "rwe.env"
SOURCES_FILE_NAME = "sources.yaml"
DAGSTER_HOME_NAME = "dagster_home"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    vocab_dir: Path
    linkage_key: str | None = None
    tombstone_key: str | None = None  # RWE_TOMBSTONE_KEY; None: the linkage key (lib/linkage/keys.py)
    duckdb_memory_limit: str = "8GB"
    staging_memory_limit: str = "3GB"  # staging spills past it (lib/staging/build.py): bounded memory
    cdm_memory_limit: str = "3GB"  # the CDM build spills past it (lib/cdm/build.py): bounded memory
    cdm_engine: str = "duckdb"  # RWE_CDM_ENGINE: where the CDM SQL runs, duckdb or spark (lib/spark/build.py)
    duckdb_threads: int = os.cpu_count() or 1
    landing_settle_seconds: float = 10.0
    min_cell_count: int = 5
    retention_days: int = 30
    analyst_group: str | None = None
    sources_file: Path | None = None  # None: <data_dir>/sources.yaml
    lake_uri: str | None = None  # None: <data_dir>/lake

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(overrides.get("data_dir") or env.get("RWE_DATA_DIR", "data")).resolve()
        env = {**read_env_file(data_dir / ENV_FILE_NAME), **env}  # the environment wins
        settings = cls(
            data_dir=data_dir,
            vocab_dir=Path(env.get("RWE_VOCAB_DIR", REPO_DIR / "vocab")).resolve(),
            linkage_key=env.get("RWE_LINKAGE_KEY") or None,
            tombstone_key=env.get("RWE_TOMBSTONE_KEY") or None,
            duckdb_memory_limit=_memory(env, "RWE_DUCKDB_MEMORY_LIMIT", cls.duckdb_memory_limit),
            staging_memory_limit=_memory(env, "RWE_STAGING_MEMORY_LIMIT", cls.staging_memory_limit),
            cdm_memory_limit=_memory(env, "RWE_CDM_MEMORY_LIMIT", cls.cdm_memory_limit),
            cdm_engine=_choice(env, "RWE_CDM_ENGINE", cls.cdm_engine, ("duckdb", "spark")),
            duckdb_threads=_int(env, "RWE_DUCKDB_THREADS", cls.duckdb_threads),
            min_cell_count=_int(env, "RWE_MIN_CELL_COUNT", cls.min_cell_count),
            retention_days=_int(env, "RWE_RETENTION_DAYS", cls.retention_days),
            analyst_group=env.get("RWE_ANALYST_GROUP") or None,
            landing_settle_seconds=_float(env, "RWE_LANDING_SETTLE_SECONDS", cls.landing_settle_seconds),
            sources_file=Path(env["RWE_SOURCES_FILE"]).resolve() if env.get("RWE_SOURCES_FILE") else None,
            lake_uri=_lake_uri(env, data_dir),
        )
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **overrides) if overrides else settings

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def lake_dir(self) -> Path | LakeUri:
        """The lake: <data_dir>/lake, or RWE_LAKE_URI (a LakeUri, whose local state, such as lock files,
        stays in data_dir)."""
        from rwe_assets.lib import lake  # deltalake and duckdb load only when the lake is used

        if not self.lake_uri:
            return self.data_dir / "lake"
        return lake.location(self.lake_uri, state_dir=self.data_dir)

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def env_file(self) -> Path:
        return self.data_dir / ENV_FILE_NAME

    @property
    def user_sources_file(self) -> Path:
        return self.sources_file or self.data_dir / SOURCES_FILE_NAME

    @property
    def default_dagster_home(self) -> Path:
        return self.data_dir / DAGSTER_HOME_NAME


def read_env_file(path: Path) -> dict[str, str]:
    """The RWE_* assignments of an env file ({} when there is none). Lines: `RWE_NAME=value`, `#`
    comments and blank lines; values may be quoted. Only the variable names are ever put in an error."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & 0o077:
        raise ConfigError(
            f"{path}: readable by group or others (it may hold the linkage key): chmod 600 {path}"
        )
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        name = name.strip()
        if not separator or not name.startswith("RWE_") or name == "RWE_DATA_DIR":
            raise ConfigError(
                f"{path} line {number}: expected RWE_NAME=value (any RWE_ setting but RWE_DATA_DIR)"
            )
        values[name] = value.strip().strip("'\"")
    return values


def _lake_uri(env: Mapping[str, str], data_dir: Path) -> str | None:
    """RWE_LAKE_URI: an s3:// URI; a local lake stays <data_dir>/lake, where the lock files, the key
    and the tombstone key that guard it are found (set RWE_DATA_DIR to move it)."""
    raw = env.get("RWE_LAKE_URI") or None
    if raw is None or raw.startswith(("s3://", "s3a://")):
        return raw
    if Path(raw).resolve() == data_dir / "lake":
        return None
    raise ConfigError(
        f"RWE_LAKE_URI: expected s3://bucket/prefix, found {raw!r}; a local lake is <RWE_DATA_DIR>/lake "
        "(set RWE_DATA_DIR to move it)"
    )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, found {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name}: expected a number >= 1, found {value}")
    return value


# What DuckDB's memory_limit reads as an amount: a number and a unit (1000^i or 1024^i). It takes a
# bare number, "80%" or "-1GB" too, as an error, 80 bytes or no limit at all: refused here instead.
_MEMORY = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|[KMGT])\s*", re.IGNORECASE)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, found {env.get(name)!r}")
    return raw


def _memory(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not _MEMORY.fullmatch(raw) or not float(re.match(r"\s*([0-9.]+)", raw).group(1)):
        raise ConfigError(f"{name}: expected an amount of memory such as 3GB or 512MB, found {raw!r}")
    return raw.strip()


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, found {raw!r}") from None
