from __future__ import annotations

from pathlib import Path

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.resources import RweConfig
from rwe_assets.settings import REPO_DIR, Settings


def test_defaults_are_documented_values(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "data"
    assert settings.vocab_dir == REPO_DIR / "vocab"  # the bundled subset, wherever the command runs
    assert settings.linkage_key is None
    assert settings.duckdb_memory_limit == "8GB"
    assert settings.landing_dir == tmp_path / "data" / "landing"
    assert settings.lake_dir == tmp_path / "data" / "lake"


def test_environment_overrides(tmp_path):
    env = {
        "RWE_DATA_DIR": str(tmp_path / "zone"),
        "RWE_LINKAGE_KEY": "k",
        "RWE_DUCKDB_MEMORY_LIMIT": "2GB",
        "RWE_DUCKDB_THREADS": "2",
        "RWE_LANDING_SETTLE_SECONDS": "0.5",
    }
    settings = Settings.from_env(env)
    assert (settings.data_dir, settings.linkage_key, settings.duckdb_memory_limit) == (
        tmp_path / "zone",
        "k",
        "2GB",
    )
    assert (settings.duckdb_threads, settings.landing_settle_seconds) == (2, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [("RWE_DUCKDB_THREADS", "two"), ("RWE_DUCKDB_THREADS", "0"), ("RWE_LANDING_SETTLE_SECONDS", "x")],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_resource_fields_override_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path / "env"))
    assert RweConfig().settings().data_dir == tmp_path / "env"
    assert RweConfig(data_dir=str(tmp_path / "explicit")).settings().data_dir == Path(tmp_path / "explicit")
