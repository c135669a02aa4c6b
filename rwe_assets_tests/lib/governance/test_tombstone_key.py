"""Tombstones keep the key they were made with: `rwe init` on a lake that holds some keeps their key as
RWE_TOMBSTONE_KEY (a demo lake's erasures were keyed with the demo key), and a configured key that did
not make them is refused instead of quietly refusing no one."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from rwe_assets import cli
from rwe_assets.errors import ConfigError
from rwe_assets.lib.governance import tombstone
from rwe_assets.lib.linkage.keys import DEMO_KEY
from rwe_assets.settings import Settings

ERASED = {"source_system": "site", "source_person_id": "p1", "given_name": "Ann", "family_name": "Lee"}


def erase_with(lake_dir, key: str) -> None:
    """What `rwe erase` leaves: the key's check, then the person's tokens under it."""
    tombstone.check_key(lake_dir, key, record=True)
    con = duckdb.connect()
    tombstone.register(con, key)
    con.register("erased", pa.Table.from_pylist([ERASED]))
    tombstone.add(lake_dir, con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table(), "e1")


def refused(lake_dir, key: str) -> int:
    con = duckdb.connect()
    con.register("sent_again", pa.Table.from_pylist([ERASED]))
    return tombstone.register_refused(con, lake_dir, "sent_again", "refused", key)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path / "data"))
    for name in ("RWE_LINKAGE_KEY", "RWE_TOMBSTONE_KEY", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def test_init_on_a_demo_lake_with_erasures_keeps_the_demo_key_for_its_tombstones(data):
    erase_with(data / "lake", DEMO_KEY)  # a demo lake (no key) erased a person
    assert cli.main(["init"]) == 0
    settings = Settings.from_env()
    assert settings.linkage_key != DEMO_KEY and settings.tombstone_key == DEMO_KEY
    assert refused(data / "lake", settings.tombstone_key) == 1  # still refused after the new key


def test_init_without_tombstones_writes_a_key_of_their_own(data):
    assert cli.main(["init"]) == 0
    settings = Settings.from_env()
    assert settings.tombstone_key not in (None, DEMO_KEY, settings.linkage_key)


def test_a_key_that_did_not_make_the_tombstones_is_refused(data):
    erase_with(data / "lake", "the-key-that-made-them-0123456789")
    assert refused(data / "lake", "the-key-that-made-them-0123456789") == 1
    with pytest.raises(ConfigError, match="made with another key"):
        refused(data / "lake", "some-other-key-0123456789abcdef")
    with pytest.raises(ConfigError, match="made with another key"):  # nor may a new erasure add to them
        tombstone.check_key(data / "lake", "some-other-key-0123456789abcdef", record=True)
