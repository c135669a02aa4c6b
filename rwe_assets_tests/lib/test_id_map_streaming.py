"""An id map's new keys reach the lake in bounded batches, never as one Arrow table in Python: at 1M
persons the measurement map gets ~75M keys (several GB of Arrow outside DuckDB's memory limit)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from rwe_assets.lib import id_map, lake

KEYS = "SELECT 'meas|site|' || lpad(CAST(i AS VARCHAR), 6, '0') AS natural_key FROM range({}) t(i)"


def test_new_keys_stream_to_the_lake_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(id_map, "_BATCH_ROWS", 1_000, raising=False)
    handed: list[int] = []
    write = lake.write

    def recording_write(path, data, **options):
        assert isinstance(data, pa.RecordBatchReader), type(data)
        batches = list(data)
        handed.extend(b.num_rows for b in batches)
        write(path, pa.RecordBatchReader.from_batches(data.schema, batches), **options)

    monkeypatch.setattr(lake, "write", recording_write)
    con = duckdb.connect()
    con.execute("SET memory_limit = '64MB'")
    table = id_map.assign_ids(con, tmp_path, "measurement", KEYS.format(5_000))
    assert sum(handed) == 5_000 and max(handed) <= 1_000

    stored = DeltaTable(str(tmp_path / "ids" / "measurement")).to_pyarrow_table()
    assert stored.schema == pa.schema([("natural_key", pa.string()), ("id", pa.int32())])
    expected = [(f"meas|site|{i:06d}", i + 1) for i in range(5_000)]  # ids in key order
    assert sorted(zip(*stored.to_pydict().values(), strict=True)) == expected
    assert sorted(con.execute(f"SELECT natural_key, id FROM {table}").fetchall()) == expected

    # a later build reads the map through DuckDB and numbers only the new keys after it
    handed.clear()
    con = duckdb.connect()
    table = id_map.assign_ids(con, tmp_path, "measurement", KEYS.format(5_500))
    assert handed == [500]
    got = dict(con.execute(f"SELECT natural_key, id FROM {table}").fetchall())
    assert got == {f"meas|site|{i:06d}": i + 1 for i in range(5_500)}
    assert not con.execute("SELECT * FROM duckdb_tables() WHERE table_name = '_new_ids'").fetchall()


def test_a_map_past_32_bits_is_refused_by_its_own_check(tmp_path):
    """Numbered as 64-bit, the new keys meet the map's check, not a cast error on their way there."""
    from rwe_assets.lib.id_map import MAX_ID

    existing = pa.table({"natural_key": ["meas|site|old"], "id": pa.array([MAX_ID - 1], pa.int32())})
    lake.write(lake.table_path(tmp_path, "ids", "measurement"), existing)
    con = duckdb.connect()
    with pytest.raises(OverflowError, match="32-bit"):
        id_map.assign_ids(con, tmp_path, "measurement", KEYS.format(2))


def test_a_failed_write_leaves_no_keys_on_the_connection(tmp_path, monkeypatch):
    def failing_write(path, data, **options):
        raise OSError("disk full")

    lake.write(
        lake.table_path(tmp_path, "ids", "measurement"),
        pa.table({"natural_key": ["k"], "id": pa.array([1], pa.int32())}),
    )
    monkeypatch.setattr(lake, "write", failing_write)
    con = duckdb.connect()
    for narrow in (False, True):
        with pytest.raises(OSError, match="disk full"):
            id_map.assign_ids(con, tmp_path, "measurement", KEYS.format(10), narrow=narrow)
        left = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name IN ('_new_ids', '_asked_keys') "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name = '_id_map'"
        ).fetchall()
        assert left == [], (narrow, left)
