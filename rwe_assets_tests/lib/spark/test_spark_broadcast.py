"""Issue 29: Spark plans no broadcast join on its estimate of a lake table's size (at 10k persons it
broadcast one in the cost step that did not fit a 3 GB driver heap); adaptive execution still
broadcasts a side whose size it measured small."""

from __future__ import annotations

import pyarrow as pa

from rwe_assets.lib import lake
from rwe_assets.lib.spark import io, session

ROWS = 2_000


def _staged_cost(path) -> None:
    """Rows shaped as stg_cost's join keys: long, repetitive strings, which Parquet compresses far below
    their size in memory (the planner's estimate of a Parquet table is its file size)."""
    keys = [f"claims_payer|line-{i:08d}|carrier|2019-01-01" for i in range(ROWS)]
    lake.write(path, pa.table({"natural_key": keys, "total_paid": [float(i) for i in range(ROWS)]}))


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def test_local_session_sets_no_planned_broadcast(spark):
    for key, value in session.NO_PLANNED_BROADCAST.items():
        assert spark.conf.get(key) == value


def test_lake_table_joined_without_a_planned_broadcast(spark, tmp_path):
    _staged_cost(tmp_path / "cost")
    io.read_delta(spark, tmp_path / "cost").createOrReplaceTempView("bc_stg_cost")
    ids = spark.range(ROWS).selectExpr(
        "format_string('claims_payer|line-%08d|carrier|2019-01-01', id) AS k", "id"
    )
    ids.createOrReplaceTempView("bc_ids_cost")
    joined = spark.sql(
        "SELECT i.id, c.total_paid FROM bc_stg_cost c JOIN bc_ids_cost i ON i.k = c.natural_key"
    )

    planned = _plan(joined)
    assert "isFinalPlan=false" in planned
    assert "SortMergeJoin" in planned and "Broadcast" not in planned, planned

    rows = joined.collect()
    assert len(rows) == ROWS and all(row.id == row.total_paid for row in rows)
    # measured at run time: a few kilobytes, so adaptive execution broadcasts it after all
    final = _plan(joined)
    assert "isFinalPlan=true" in final and "BroadcastHashJoin" in final, final
