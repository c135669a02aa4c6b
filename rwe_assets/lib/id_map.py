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
_SCHEMA = pa.schema([("natural_key", pa.string()), ("id", pa.int32())])
_BATCH_ROWS = 500_000


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
    # an earlier assignment's table may be a view of its file by now (lib/cdm/intermediates.py)
    if con.execute("SELECT 1 FROM duckdb_views() WHERE temporary AND view_name = ?", [table]).fetchone():
        con.execute(f"DROP VIEW {table}")
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
    else:  # the map read and the new keys kept by DuckDB (within its memory limit), not as Arrow
        if lake.register_view(con, "_id_map", path):
            con.execute(f"INSERT INTO {table} SELECT natural_key, id FROM _id_map")
        start = con.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    try:
        added = _new_keys(con, asked, table, start, values or {})
        if added:  # numbered as BIGINT, so the check below sees an overflow before any cast does
            if start + added > MAX_ID:
                raise OverflowError(f"id map {name}: more than {MAX_ID} ids; OMOP ids are 32-bit integers")
            new_ids = "SELECT natural_key, CAST(id AS INTEGER) AS id FROM _new_ids"
            con.execute(f"INSERT INTO {table} {new_ids}")
            lake.write(path, _batches(con.sql(new_ids)), mode="append")
    finally:  # a failed write or check leaves no copy of the keys on a connection kept open
        for drop in ("TABLE IF EXISTS _asked_keys", "TABLE IF EXISTS _new_ids", "VIEW IF EXISTS _id_map"):
            con.execute(f"DROP {drop}")
    return table


def _new_keys(con, asked: str, table: str, start: int, values: Mapping[str, object]) -> int:
    """Temp table _new_ids: the keys of `asked` not in `table`, numbered after `start` in key order;
    returns how many."""
    query = f"""
        CREATE OR REPLACE TEMP TABLE _new_ids AS
        SELECT natural_key, $id_start + row_number() OVER (ORDER BY natural_key) AS id
        FROM {asked} ANTI JOIN {table} USING (natural_key)
        """
    values = {**values, "id_start": start}
    used = set(PARAMETER.findall(code_of(query)))
    if used - values.keys():
        raise ConfigError(f"id map query: expected values for {sorted(used - values.keys())}, found none")
    con.execute(query, {k: values[k] for k in used})
    return con.execute("SELECT count(*) FROM _new_ids").fetchone()[0]


def _batches(relation: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """The relation's rows streamed in the map's Delta schema (at 1M persons a map holds tens of millions
    of keys: never all of them in Python at once)."""
    reader = relation.fetch_arrow_reader(batch_size=_BATCH_ROWS)
    return pa.RecordBatchReader.from_batches(_SCHEMA, (batch.cast(_SCHEMA) for batch in reader))
