"""The project's settings: one place, read from the environment, shared by the `rwe` command and
the Dagster code location.

| variable                    | default       | meaning                                                  |
|-----------------------------|---------------|----------------------------------------------------------|
| RWE_DATA_DIR                | ./data        | landing zone, lake and warehouse live below it           |
| RWE_VOCAB_DIR               | bundled vocab/| OMOP vocabulary files (Athena layout); default: the      |
|                             |               | demo subset shipped in the repository's vocab/ folder    |
| RWE_LINKAGE_KEY             | (unset)       | secret key for linkage tokens; never put it in the repo  |
| RWE_DUCKDB_MEMORY_LIMIT     | 8GB           | DuckDB memory_limit for builds                           |
| RWE_DUCKDB_THREADS          | CPU count     | DuckDB threads                                           |
| RWE_LANDING_SETTLE_SECONDS  | 10            | a batch is picked up once no file in it changed for this |

Relative paths resolve against the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from rwe_assets.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    vocab_dir: Path
    linkage_key: str | None = None
    duckdb_memory_limit: str = "8GB"
    duckdb_threads: int = os.cpu_count() or 1
    landing_settle_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            data_dir=Path(env.get("RWE_DATA_DIR", "data")).resolve(),
            vocab_dir=Path(env.get("RWE_VOCAB_DIR", REPO_DIR / "vocab")).resolve(),
            linkage_key=env.get("RWE_LINKAGE_KEY") or None,
            duckdb_memory_limit=env.get("RWE_DUCKDB_MEMORY_LIMIT", cls.duckdb_memory_limit),
            duckdb_threads=_int(env, "RWE_DUCKDB_THREADS", cls.duckdb_threads),
            landing_settle_seconds=_float(env, "RWE_LANDING_SETTLE_SECONDS", cls.landing_settle_seconds),
        )
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **overrides) if overrides else settings

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"


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


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, found {raw!r}") from None
