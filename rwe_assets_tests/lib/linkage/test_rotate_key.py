"""`rwe rotate-key`: new tokens, same person ids, the next batch links against the new tokens; refusals
when the key lives in the environment, is the demo key, or is not the key the lake was linked with."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from deltalake import DeltaTable

from rwe_assets import cli
from rwe_assets.lib import lake
from rwe_assets.lib.governance import audit, tombstone
from rwe_assets.lib.linkage import rotate
from rwe_assets.lib.linkage.crosswalk import link, register_staged_persons
from rwe_assets.lib.linkage.keys import tombstone_key
from rwe_assets.settings import Settings, read_env_file
from rwe_assets_tests.lib.linkage.test_review import BASE, ROWS, stage

OLD_KEY = "old-linkage-key-0123456789abcdef"
DUPLICATE = {**BASE, "given_name": "MARK", "source_system": "site_c", "source_person_id": "dup"}


def relink(lake_dir: Path, key: str):
    con = duckdb.connect()
    register_staged_persons(con, lake_dir)
    result = link(con, lake_dir, key)
    return result, sorted(tuple(r.values()) for r in result.crosswalk.to_pylist())


def tokens(lake_dir: Path) -> dict[str, tuple]:
    table = lake.read_table(lake.table_path(lake_dir, "linkage", "tokens"))
    return {r["record_id"]: (r["t_family"], r["fingerprint"]) for r in table.to_pylist()}


@pytest.fixture
def linked(tmp_path, monkeypatch):
    """<tmp>/data linked with OLD_KEY, the key in <tmp>/data/rwe.env (0600)."""
    data = tmp_path / "data"
    stage(data / "lake", [*ROWS, DUPLICATE])
    rotate.write_key(data / "rwe.env", OLD_KEY)
    monkeypatch.setenv("RWE_DATA_DIR", str(data))
    for name in ("RWE_LINKAGE_KEY", "RWE_TOMBSTONE_KEY", rotate.NEW_KEY_VARIABLE, "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    _, crosswalk = relink(data / "lake", OLD_KEY)
    return data, crosswalk


def test_rotation_keeps_person_ids_and_a_new_batch_links_to_old_persons(linked, capsys):
    data, before = linked
    lake_dir, old_tokens = data / "lake", tokens(data / "lake")
    assert cli.main(["rotate-key"]) == 0
    assert "re-keyed the tokens of 4 records" in capsys.readouterr().out
    env = data / "rwe.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    new_key = read_env_file(env)["RWE_LINKAGE_KEY"]
    assert new_key != OLD_KEY and Settings.from_env().linkage_key == new_key
    assert OLD_KEY not in env.read_text()
    new_tokens = tokens(lake_dir)
    assert new_tokens.keys() == old_tokens.keys()
    assert all(
        new_tokens[r][0] != old_tokens[r][0] and new_tokens[r][1] != old_tokens[r][1] for r in old_tokens
    )
    # no file of the tokens table holds an old-key token any more (no Delta history under the old key)
    path = lake.table_path(lake_dir, "linkage", "tokens")
    assert len(DeltaTable(str(path)).history()) == 1
    on_disk = ds.dataset(str(path), format="parquet").to_table(columns=["t_family"]).column(0).to_pylist()
    assert not {t for t, _ in old_tokens.values()} & set(on_disk)
    assert not list(path.parent.glob("tokens.*"))
    assert audit.read_trail_in(lake_dir).to_pylist()[-1]["action"] == "key_rotation"

    result, after = relink(lake_dir, new_key)
    assert after == before  # the crosswalk, row for row
    assert result.counts["records_compared_as_new"] == 0  # every record recognised under the new key

    mark = next(r[2] for r in before if r[:2] == ("site_a", "a"))
    stage(
        lake_dir,
        [*ROWS, DUPLICATE, {**BASE, "given_name": "Marc", "source_system": "lab", "source_person_id": "n"}],
    )
    result, later = relink(lake_dir, new_key)
    assert result.counts["records_compared_as_new"] == 1
    assert next(r[2] for r in later if r[:2] == ("lab", "n")) == mark
    assert [r for r in later if r[:2] != ("lab", "n")] == before


def test_a_record_changed_since_the_last_run_is_left_to_the_next(linked):
    data, _ = linked
    lake_dir = data / "lake"
    stage(lake_dir, [*ROWS[:2], {**ROWS[2], "phone": "555-777-1212"}, DUPLICATE])  # the payer record changed
    con = duckdb.connect()
    rotation = rotate.prepare(con, lake_dir, OLD_KEY, "new-linkage-key-0123456789abcdef")
    assert (rotation.rekeyed, rotation.left_for_next_run, rotation.no_longer_staged) == (3, 1, 0)
    rotate.swap_in(lake_dir)
    result, _ = relink(lake_dir, "new-linkage-key-0123456789abcdef")
    assert result.counts["records_compared_as_new"] == 1


def test_an_interrupted_rotation_is_finished_or_discarded(linked, capsys):
    data, before = linked
    lake_dir, new_key = data / "lake", "new-linkage-key-0123456789abcdef"
    rotate.prepare(duckdb.connect(), lake_dir, OLD_KEY, new_key)  # killed before the key was saved:
    assert cli.main(["rotate-key"]) == 0  # discarded, then a rotation of its own
    assert "re-keyed the tokens of 4 records" in capsys.readouterr().out
    saved = read_env_file(data / "rwe.env")["RWE_LINKAGE_KEY"]
    rotate.prepare(duckdb.connect(), lake_dir, saved, new_key)
    rotate.write_key(data / "rwe.env", new_key)  # killed after the key was saved, before the swap
    assert cli.main(["rotate-key"]) == 0
    assert "finished an interrupted rotation" in capsys.readouterr().out
    assert read_env_file(data / "rwe.env")["RWE_LINKAGE_KEY"] == new_key
    result, after = relink(lake_dir, new_key)
    assert after == before and result.counts["records_compared_as_new"] == 0
    assert not list((lake_dir / "linkage").glob("tokens.*"))


def test_refusals_change_nothing(linked, monkeypatch, capsys):
    data, _ = linked
    env_before, tokens_before = (data / "rwe.env").read_text(), tokens(data / "lake")
    monkeypatch.setenv("RWE_LINKAGE_KEY", OLD_KEY)  # the key comes from the environment
    assert cli.main(["rotate-key"]) == 2
    assert "--new-key-from-env" in capsys.readouterr().err
    monkeypatch.setenv(rotate.NEW_KEY_VARIABLE, "short")
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 2
    monkeypatch.setenv(rotate.NEW_KEY_VARIABLE, OLD_KEY)
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 2
    monkeypatch.setenv("RWE_LINKAGE_KEY", "not-the-key-the-lake-was-linked-with")
    monkeypatch.setenv(rotate.NEW_KEY_VARIABLE, "new-linkage-key-0123456789abcdef")
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 2
    assert "is it the key the lake was linked with" in capsys.readouterr().err
    assert (data / "rwe.env").read_text() == env_before and tokens(data / "lake") == tokens_before
    assert not list((data / "lake" / "linkage").glob("tokens.*"))


def test_a_key_from_the_environment_rotates_with_the_new_key_given_there(linked, monkeypatch, capsys):
    data, before = linked
    env_before = (data / "rwe.env").read_text()
    monkeypatch.setenv("RWE_LINKAGE_KEY", OLD_KEY)
    monkeypatch.setenv(rotate.NEW_KEY_VARIABLE, "new-linkage-key-0123456789abcdef")
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 0
    assert "now set RWE_LINKAGE_KEY to the new key" in capsys.readouterr().out
    assert (data / "rwe.env").read_text() == env_before  # the environment is the user's to change
    result, after = relink(data / "lake", os.environ[rotate.NEW_KEY_VARIABLE])
    assert after == before and result.counts["records_compared_as_new"] == 0


def erasure_tombstone_token(data: Path) -> str:
    """Leave a tombstone of DUPLICATE under the data directory's tombstone key; returns its record token."""
    con = duckdb.connect()
    tombstone.register(con, tombstone_key(Settings.from_env()))
    con.register("erased", pa.Table.from_pylist([DUPLICATE]))
    tokens = con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table()
    tombstone.add(data / "lake", tokens, "e1")
    return tokens.filter(pa.compute.equal(tokens["kind"], "record"))["token"][0].as_py()


def tombstone_token_now(data: Path) -> str:
    con = duckdb.connect()
    tombstone.register(con, tombstone_key(Settings.from_env()))
    con.register("erased", pa.Table.from_pylist([DUPLICATE]))
    return con.execute(
        f"SELECT token FROM ({tombstone.tokens_sql(con, 'erased')}) WHERE kind = 'record'"
    ).fetchone()[0]


def test_a_rotation_after_an_erasure_keeps_the_tombstones_key(linked, capsys):
    """Tombstones made with the linkage key (a lake from before RWE_TOMBSTONE_KEY) cannot be re-keyed:
    rotation keeps the old key on as RWE_TOMBSTONE_KEY, so the erased person is still refused."""
    data, before = linked
    token = erasure_tombstone_token(data)
    assert cli.main(["rotate-key"]) == 0
    env = read_env_file(data / "rwe.env")
    assert env["RWE_LINKAGE_KEY"] != OLD_KEY and env["RWE_TOMBSTONE_KEY"] == OLD_KEY
    assert tombstone_token_now(data) == token  # the same person still computes a held tombstone
    result, after = relink(data / "lake", env["RWE_LINKAGE_KEY"])
    assert after == before and result.counts["records_compared_as_new"] == 0
    assert cli.main(["rotate-key"]) == 0  # a second rotation keeps the tombstone key as it is
    assert read_env_file(data / "rwe.env")["RWE_TOMBSTONE_KEY"] == OLD_KEY
    assert tombstone_token_now(data) == token


def test_a_tombstone_key_of_its_own_is_left_alone(linked, monkeypatch):
    data, _ = linked
    monkeypatch.setenv("RWE_TOMBSTONE_KEY", "tombstone-key-0123456789abcdef")
    token = erasure_tombstone_token(data)
    assert cli.main(["rotate-key"]) == 0
    assert "RWE_TOMBSTONE_KEY" not in read_env_file(data / "rwe.env")
    assert tombstone_token_now(data) == token


def test_tombstones_under_a_key_in_the_environment_refuse_a_rotation(linked, monkeypatch, capsys):
    """The command cannot write the environment, so it cannot keep the old key for the tombstones."""
    data, _ = linked
    erasure_tombstone_token(data)
    tokens_before = tokens(data / "lake")
    monkeypatch.setenv("RWE_LINKAGE_KEY", OLD_KEY)
    monkeypatch.setenv(rotate.NEW_KEY_VARIABLE, "new-linkage-key-0123456789abcdef")
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 2
    assert "set RWE_TOMBSTONE_KEY to the current value of RWE_LINKAGE_KEY" in capsys.readouterr().err
    assert tokens(data / "lake") == tokens_before
    monkeypatch.setenv("RWE_TOMBSTONE_KEY", OLD_KEY)  # done as told: now it rotates
    assert cli.main(["rotate-key", "--new-key-from-env"]) == 0


def test_the_demo_key_is_not_rotated(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RWE_LINKAGE_KEY", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli.main(["rotate-key"]) == 2
    assert "rwe init" in capsys.readouterr().err
