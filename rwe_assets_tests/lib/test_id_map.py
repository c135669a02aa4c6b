from __future__ import annotations

import duckdb

from rwe_assets.lib.id_map import assign_ids


def ids(con, table):
    return dict(con.execute(f"SELECT natural_key, id FROM {table}").fetchall())


def test_ids_are_stable_across_runs_and_new_keys_get_new_ids(tmp_path):
    con = duckdb.connect()
    first = ids(con, assign_ids(con, tmp_path, "person", "SELECT unnest(['b', 'a', 'c']) AS natural_key"))
    assert first == {"a": 1, "b": 2, "c": 3}

    con = duckdb.connect()  # a later build, in another process
    second = ids(
        con, assign_ids(con, tmp_path, "person", "SELECT unnest(['c', 'aa', 'a', NULL]) AS natural_key")
    )
    assert second == {"a": 1, "b": 2, "c": 3, "aa": 4}
