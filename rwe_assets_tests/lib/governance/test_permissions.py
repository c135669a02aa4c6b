"""File modes: the lake owner-only after an ingest; the published files readable by the analyst group."""

import grp
import os
import stat

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.governance import permissions
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.settings import Settings
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,1999-12-31,Cy\n"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def settings(tmp_path, registry) -> Settings:
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "data")
    land(settings.landing_dir, "clinic", "b1", {"patients.csv": PATIENTS, "bad_conditions.csv": "PATIENT\n"})
    old = os.umask(0o022)  # the usual umask: what the writers must not rely on
    try:
        ingest_batch(settings.lake_dir, settings.landing_dir, registry.get("clinic"), "b1")
    finally:
        os.umask(old)
    return settings


def test_an_ingest_leaves_every_lake_path_owner_only(settings):
    paths = [settings.lake_dir, *settings.lake_dir.rglob("*")]
    assert any(p.suffix == ".parquet" for p in paths) and any(p.name == "_manifest" for p in paths)
    assert {mode(p) for p in paths if p.is_dir()} == {0o700}
    assert {mode(p) for p in paths if p.is_file()} == {0o600}
    assert permissions.loose_paths(settings.lake_dir) == []


def test_apply_shares_only_the_published_files_and_the_check_sees_a_loose_path(settings):
    warehouse = settings.warehouse_dir
    warehouse.mkdir(mode=0o755)
    (warehouse / "plots").mkdir(mode=0o755)
    for name in ("rwe.duckdb", "rwe_deid.duckdb", "build.duckdb", "plots/km.png", "vocabulary.duckdb"):
        (warehouse / name).write_bytes(b"x")
        os.chmod(warehouse / name, 0o644)
    os.chmod(settings.data_dir, 0o755)
    os.chmod(settings.landing_dir, 0o775)  # a senders' group may write; others must not read
    raw_file = next(settings.lake_dir.rglob("*.parquet"))
    os.chmod(raw_file, 0o644)  # what a writer outside the hooks leaves
    problems = permissions.mode_problems(settings.data_dir)
    assert f"{raw_file.relative_to(settings.data_dir)} 0644" in problems
    assert {"warehouse/build.duckdb 0644", "warehouse/rwe.duckdb 0644", ". 0755", "landing 0775"} <= set(
        problems
    )

    permissions.apply(settings.data_dir)

    assert permissions.mode_problems(settings.data_dir) == []
    assert mode(raw_file) == 0o600
    assert mode(settings.landing_dir) == 0o770
    assert (mode(settings.data_dir), mode(warehouse)) == (0o750, 0o750)
    assert (mode(warehouse / "rwe.duckdb"), mode(warehouse / "rwe_deid.duckdb")) == (0o640, 0o640)
    assert (mode(warehouse / "plots"), mode(warehouse / "plots" / "km.png")) == (0o750, 0o640)
    assert mode(warehouse / "build.duckdb") == 0o600  # analysts never open the file being written
    assert mode(warehouse / "vocabulary.duckdb") == 0o600


def test_the_analyst_group_is_given_the_published_file(tmp_path):
    published = tmp_path / "rwe.duckdb"
    published.write_bytes(b"x")
    group = grp.getgrgid(os.getgid()).gr_name  # a group this user belongs to
    permissions.share_with_analysts(published, group)
    assert (os.stat(published).st_gid, mode(published)) == (os.getgid(), 0o640)
    with pytest.raises(ConfigError, match="no such group"):
        permissions.share_with_analysts(published, "rwe-no-such-group-x")
