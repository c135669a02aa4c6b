"""The id maps' key queries of the CDM build's steps hold no value as SQL text: the event tables share
one query and bind their table name ($cdm_table), and that binding picks each table's keys."""

from __future__ import annotations

import duckdb
import sqlglot
from sqlglot import exp

from rwe_assets.lib.cdm.steps import EVENT_TABLES, STEPS, Ids
from rwe_assets.lib.id_map import assign_ids

ID_ACTIONS = [a for step in STEPS for a in step.actions if isinstance(a, Ids)]


def test_no_key_query_writes_a_value_into_its_text():
    for action in ID_ACTIONS:
        literals = sqlglot.parse_one(action.query, read="duckdb").find_all(exp.Literal)
        assert [lit.sql() for lit in literals if lit.this != "|"] == [], action  # '|' joins a key


def test_the_event_tables_share_one_key_query_bound_to_their_name():
    events = {a.table: a for a in ID_ACTIONS if a.table in EVENT_TABLES}
    assert set(events) == set(EVENT_TABLES)
    assert len({a.query for a in events.values()}) == 1
    assert {table: dict(a.values) for table, a in events.items()} == {
        t: {"cdm_table": t} for t in EVENT_TABLES
    }


def test_bound_values_pick_each_tables_keys(tmp_path):
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE mapped_event AS SELECT * FROM (VALUES ('a|1', 'measurement'), ('a|2', 'observation'), "
        "('a|3', 'measurement')) t(natural_key, cdm_table)"
    )
    ids = {}
    for action in ID_ACTIONS:
        if action.table in ("measurement", "observation"):
            table = assign_ids(con, tmp_path, action.table, action.query, values=dict(action.values))
            ids[action.table] = dict(con.execute(f"SELECT natural_key, id FROM {table}").fetchall())
    assert ids == {"measurement": {"a|1": 1, "a|3": 2}, "observation": {"a|2": 1}}
    # an incremental build reads only the asked keys of the map, bound the same way
    action = next(a for a in ID_ACTIONS if a.table == "measurement")
    con.execute("INSERT INTO mapped_event VALUES ('a|0', 'measurement')")
    table = assign_ids(con, tmp_path, "measurement", action.query, narrow=True, values=dict(action.values))
    assert dict(con.execute(f"SELECT natural_key, id FROM {table}").fetchall()) == {
        "a|0": 3,
        "a|1": 1,
        "a|3": 2,
    }
