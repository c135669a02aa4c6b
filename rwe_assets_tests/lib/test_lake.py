"""lake.register_parquet_view reads exactly the live rows of a Delta table: after appends with a new
column, after a delete (whose superseded files stay on disk), and for a table without any file."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from rwe_assets.lib import lake


def rows(con, name):
    return sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


def view_sql(con, name):
    found = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()
    return found[0] if found else ""


def test_parquet_view_has_the_live_rows_in_schema_order(tmp_path):
    path = tmp_path / "t"
    write_deltalake(str(path), pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    lake.append(path, pa.table({"k": [4], "v": ["d"], "extra": [1.5]}))
    DeltaTable(str(path)).delete("k = 2")  # rewrites a file; the old one stays on disk
    con = duckdb.connect()
    assert lake.register_parquet_view(con, "by_parquet", path)
    assert lake.register_view(con, "by_arrow", path)
    assert "read_parquet" in view_sql(con, "by_parquet")  # the Parquet path, not the fallback
    assert [c[0] for c in con.execute("DESCRIBE by_parquet").fetchall()] == ["k", "v", "extra"]
    assert rows(con, "by_parquet") == rows(con, "by_arrow") == [(1, "a", None), (3, "c", None), (4, "d", 1.5)]
    assert len(list(path.glob("*.parquet"))) > len(DeltaTable(str(path)).file_uris())


def test_a_table_without_files_falls_back_and_a_missing_one_is_reported(tmp_path):
    path = tmp_path / "empty"
    write_deltalake(str(path), pa.table({"k": pa.array([], pa.int64())}))
    DeltaTable(str(path)).delete()
    con = duckdb.connect()
    assert lake.register_parquet_view(con, "empty", path)
    assert con.execute("SELECT count(*) FROM empty").fetchone() == (0,)
    assert "read_parquet" not in view_sql(con, "empty")  # the pyarrow dataset
    assert not lake.register_parquet_view(con, "missing", tmp_path / "missing")
