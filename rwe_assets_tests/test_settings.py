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


def _env_file(data_dir: Path, text: str, mode: int = 0o600) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "rwe.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_env_file_in_the_data_directory_supplies_the_key(tmp_path):
    _env_file(
        tmp_path, "# written by rwe init\nRWE_LINKAGE_KEY=from-the-file-0123456789\nRWE_DUCKDB_THREADS='3'\n"
    )
    settings = Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})
    assert (settings.linkage_key, settings.duckdb_threads) == ("from-the-file-0123456789", 3)
    assert settings.env_file == tmp_path / "rwe.env"
    # the environment wins over the file
    env = {"RWE_DATA_DIR": str(tmp_path), "RWE_LINKAGE_KEY": "from-the-environment-01"}
    assert Settings.from_env(env).linkage_key == "from-the-environment-01"
    # and the code location reads it too, through its resource
    assert RweConfig(data_dir=str(tmp_path)).settings().linkage_key == "from-the-file-0123456789"


def test_an_env_file_others_can_read_is_refused_without_printing_its_values(tmp_path):
    _env_file(tmp_path, "RWE_LINKAGE_KEY=secret-value-0123456789\n", mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600") as refused:
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})
    assert "secret-value" not in str(refused.value)


@pytest.mark.parametrize("line", ["RWE_DATA_DIR=/elsewhere", "PATH=/bin", "RWE_LINKAGE_KEY"])
def test_env_file_lines_other_than_rwe_settings_are_refused(tmp_path, line):
    _env_file(tmp_path, f"{line}\n")
    with pytest.raises(ConfigError, match="line 1"):
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})


def test_the_user_registry_and_the_dagster_home_live_in_the_data_directory(tmp_path):
    settings = Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})
    assert settings.user_sources_file == tmp_path / "sources.yaml"
    assert settings.default_dagster_home == tmp_path / "dagster_home"
    named = Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_SOURCES_FILE": str(tmp_path / "x.yaml")})
    assert named.user_sources_file == tmp_path / "x.yaml"
