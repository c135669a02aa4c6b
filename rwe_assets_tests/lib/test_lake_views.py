"""A view name registered again switches between lake.py's two ways to expose a table (a DuckDB view
over the Parquet files, a registered Arrow dataset) without DuckDB refusing the second."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib import lake


def test_a_name_can_be_registered_again_whichever_way_it_was_first(tmp_path):
    with_files, without_files = tmp_path / "a", tmp_path / "b"
    lake.write(with_files, pa.table({"k": [1, 2]}))
    lake.write(without_files, pa.table({"k": pa.array([], pa.int64())}))
    lake.open_table(without_files).delete()
    con = duckdb.connect()
    for path, rows in [(with_files, 2), (without_files, 0), (with_files, 2)]:  # view, Arrow, view
        assert lake.register_parquet_view(con, "raw_x_all", path)
        assert con.execute("SELECT count(*) FROM raw_x_all").fetchone() == (rows,)
    assert lake.register_view(con, "raw_x_all", with_files)  # Arrow over a view
    assert con.execute("SELECT count(*) FROM raw_x_all").fetchone() == (2,)
