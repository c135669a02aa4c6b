"""Stable surrogate ids: a persistent map from natural key to INTEGER id per CDM table.

OMOP v5.4 ids are 32-bit integers, too small for hashes of millions of keys without collisions, and a
bare row_number() changes ids whenever input order or content changes. So each table keeps a map
(Delta, lake/ids/<table>): keys seen before keep their id; new keys get the next ids, in key order.
Rebuilding the CDM from the same data gives the same ids; new data only adds ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.sql_loader import PARAMETER, code_of, execute

MAX_ID = 2**31 - 1


def assign_ids(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    name: str,
    keys_sql: str,
    narrow: bool = False,
    values: Mapping[str, object] | None = None,
) -> str:
    """Make table `ids_<name>(natural_key VARCHAR, id INTEGER)` cover every key `keys_sql` returns
    (one VARCHAR column named natural_key), persisting new keys. Returns the table name. `values`:
    the ``$name`` parameters `keys_sql` uses (lib/sql_loader.py).

    `narrow`: the table holds only the keys asked, and only their rows of the map are read (an
    incremental CDM build asks for a few thousand keys of a map of millions); the ids are the same."""
    path = lake.table_path(lake_dir, "ids", name)
    table = f"ids_{name}"
    # No PRIMARY KEY: keys are unique by construction (only keys not yet in the map are added, each
    # once), and an index over millions of string keys would cost more than the rest of the build step.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (natural_key VARCHAR, id INTEGER)")
    asked = f"(SELECT DISTINCT natural_key FROM ({keys_sql}) WHERE natural_key IS NOT NULL)"
    if narrow and lake.register_view(con, "_id_map", path):
        # the asked keys are read twice here (the map's rows, then the new keys): computed once
        execute(con, f"CREATE OR REPLACE TEMP TABLE _asked_keys AS SELECT * FROM {asked}", values or {})
        asked = "_asked_keys"
        con.execute(
            f"INSERT INTO {table} SELECT natural_key, id FROM _id_map SEMI JOIN {asked} USING (natural_key)"
        )
        start = con.execute("SELECT coalesce(max(id), 0) FROM _id_map").fetchone()[0]
    else:
        existing = lake.read_table(path)
        if existing is not None:
            con.register("_existing_ids", existing)
            con.execute(f"INSERT INTO {table} SELECT natural_key, id FROM _existing_ids")
            con.unregister("_existing_ids")
        start = con.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    new = _new_keys(con, asked, table, start, values or {})
    con.execute("DROP TABLE IF EXISTS _asked_keys")
    if new.num_rows:
        if start + new.num_rows > MAX_ID:
            raise OverflowError(f"id map {name}: more than {MAX_ID} ids; OMOP ids are 32-bit integers")
        con.register("_new_ids", new)
        con.execute(f"INSERT INTO {table} SELECT natural_key, id FROM _new_ids")
        con.unregister("_new_ids")
        schema = pa.schema([("natural_key", pa.string()), ("id", pa.int32())])
        lake.write(path, new.cast(schema), mode="append")
    return table


def _new_keys(con, asked: str, table: str, start: int, values: Mapping[str, object]) -> pa.Table:
    """The keys of `asked` not in `table`, numbered after `start` in key order."""
    query = f"""
        SELECT natural_key, CAST($id_start + row_number() OVER (ORDER BY natural_key) AS INTEGER) AS id
        FROM {asked} ANTI JOIN {table} USING (natural_key)
        """
    values = {**values, "id_start": start}
    used = set(PARAMETER.findall(code_of(query)))
    if used - values.keys():
        raise ConfigError(f"id map query: expected values for {sorted(used - values.keys())}, found none")
    return con.sql(query, params={k: values[k] for k in used}).to_arrow_table()
