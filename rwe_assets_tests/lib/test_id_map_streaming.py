"""An id map's new keys reach the lake in bounded batches, never as one Arrow table in Python: at 1M
persons the measurement map gets ~75M keys (several GB of Arrow outside DuckDB's memory limit)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
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
