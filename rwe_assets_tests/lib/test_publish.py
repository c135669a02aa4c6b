from __future__ import annotations

import duckdb
import pytest

from rwe_assets.lib.publish import publish


def make_build(warehouse, persons):
    warehouse.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS cdm")
        con.execute(
            "CREATE OR REPLACE TABLE cdm.person AS SELECT range AS person_id FROM range(?)", [persons]
        )


def test_publish_swaps_the_file_and_open_readers_keep_the_old_one(tmp_path):
    make_build(tmp_path, 3)
    target = publish(tmp_path)
    reader = duckdb.connect(str(target), read_only=True)
    make_build(tmp_path, 5)
    publish(tmp_path)
    assert reader.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 3  # old snapshot, no lock error
    reader.close()  # DuckDB shares one open database per path within a process: close before reopening
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 5


def test_a_broken_build_is_not_published(tmp_path):
    make_build(tmp_path, 3)
    publish(tmp_path)
    (tmp_path / "build.duckdb").write_bytes(b"not a database")
    with pytest.raises(duckdb.Error):
        publish(tmp_path)
    with duckdb.connect(str(tmp_path / "rwe.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 3
