"""A Spark build in a process whose SparkSession is already running (a test's, a long-lived code
location's) runs on a new session of it: temp views of its own, so a table an earlier build registered
cannot stand in for one this build has not written (review: SparkTables.get falls back to the
session's temp views by name)."""

from __future__ import annotations

from rwe_assets.lib.spark import build as spark_build
from rwe_assets.lib.spark.tables import SparkTables, view_name


def test_a_build_on_a_running_session_sees_no_table_an_earlier_build_left(spark, tmp_path, monkeypatch):
    earlier = SparkTables(spark)
    earlier.put("cdm.person", spark.createDataFrame([(1,), (2,), (3,)], "person_id long"))
    seen = {}

    def steps(state, run):  # what the build's steps would see, instead of running them
        seen["person"] = run.spark.catalog.tableExists(view_name("cdm.person"))
        return "report"

    monkeypatch.setattr(spark_build, "_steps", steps)
    monkeypatch.setattr(spark_build, "SparkBuild", lambda state, session, scratch: SparkTables(session))
    assert spark_build.build_on_spark(None, tmp_path, "1GB", 1) == "report"
    assert seen["person"] is False
    assert spark.catalog.tableExists(view_name("cdm.person"))  # the caller's session keeps its own
