"""Breaking a rule on purpose in a real build turns the matching check red, stops publishing, and
leaves the published file analysts read as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import dagster as dg
import duckdb
import pytest

from rwe_assets.definitions import defs
from rwe_assets.lib.cdm import build as cdm_build_module
from rwe_assets.lib.cdm.build import EVENT_TABLES

# Each corruption runs right after the build writes CONDITION_OCCURRENCE.
CORRUPTIONS = {
    # two rows share an id; the row count is unchanged, so only the primary-key check can see it
    "duplicate_primary_key": (
        "UPDATE cdm.condition_occurrence SET condition_occurrence_id = "
        "(SELECT min(condition_occurrence_id) FROM cdm.condition_occurrence) "
        "WHERE condition_occurrence_id = (SELECT max(condition_occurrence_id) FROM cdm.condition_occurrence)",
        {
            ("results/dq_check_results", "dqd_structural_checks_pass"),
            ("cdm/condition_occurrence", "dqd_structural"),
        },
    ),
    # a row points at a person who does not exist
    "orphan_foreign_key": (
        "UPDATE cdm.condition_occurrence SET person_id = 999999999 "
        "WHERE condition_occurrence_id = (SELECT max(condition_occurrence_id) FROM cdm.condition_occurrence)",
        # the tables built from condition_occurrence afterwards inherit the unknown person
        {("results/dq_check_results", "dqd_structural_checks_pass")}
        | {
            (f"cdm/{t}", "dqd_structural")
            for t in ("condition_occurrence", "condition_era", "observation_period")
        },
    ),
    # a staged condition never reaches the CDM
    "lost_row": (
        "DELETE FROM cdm.condition_occurrence "
        "WHERE condition_occurrence_id = (SELECT max(condition_occurrence_id) FROM cdm.condition_occurrence)",
        # the event tables share one staging reconciliation, so each event table's check is red
        {(f"cdm/{table}", "cdm_rows_reconcile") for table in EVENT_TABLES},
    ),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory, sample_published):
    """The bundled Synthea sample ingested, built, checked and published (conftest's sample_published,
    by the library path: the tables the build job publishes, test_crash.py), copied: the tests build
    and publish over it with the build job."""
    data = tmp_path_factory.mktemp("gating") / "data"
    shutil.copytree(sample_published, data)
    return data


def published_state(path) -> tuple[int, bytes]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM cdm.condition_occurrence").fetchone()[0]
    return rows, path.read_bytes()


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_a_broken_rule_turns_its_check_red_and_blocks_publishing(published, monkeypatch, name):
    statement, expected_red = CORRUPTIONS[name]
    monkeypatch.setenv("RWE_DATA_DIR", str(published))
    target = published / "warehouse" / "rwe.duckdb"
    before = published_state(target)
    real_run_sql = cdm_build_module.run_sql

    def corrupting_run_sql(con, step):
        real_run_sql(con, step)
        if step == "condition_occurrence":
            con.execute(statement)

    monkeypatch.setattr(cdm_build_module, "run_sql", corrupting_run_sql)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("build").execute_in_process(instance=instance, raise_on_error=False)
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
        for e in result.get_asset_check_evaluations()
    }
    assert {key for key, (passed, severity) in evaluations.items() if not passed and severity == "ERROR"} == (
        expected_red
    )  # value checks (warnings) may fail on real data; no other error-level check is red
    if name != "lost_row":  # a blocking reconciliation skips publish; a DQD failure makes it refuse
        assert "PublishBlocked" in str(
            [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        )
    published_keys = {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key
    }
    assert "publish/rwe_duckdb" not in published_keys
    assert published_state(target) == before  # the analysts' file is byte for byte the old one


# An analyst's process, reading until the stop file exists: one line once its first read is done, then a
# JSON summary. A process of its own, as a reader is: a thread in the test's process shared the GIL with
# the build, which made both slow (about 18 reads a second, and 35 CPU s on top of the build's 15).
# A read costs about 24 ms of CPU: with the pause, about 30 reads a second on less than a whole core.
READER = """
import json, sys, time
from pathlib import Path
import duckdb
target, stop = sys.argv[1], Path(sys.argv[2])
seen, errors, reads = set(), [], 0
while True:
    try:
        with duckdb.connect(target, read_only=True) as con:
            seen.add(con.execute("SELECT count(*) FROM cdm.person").fetchone()[0])
    except duckdb.Error as error:
        errors.append(repr(error))
    reads += 1
    if reads == 1:
        print("reading", flush=True)
    if stop.exists():
        break
    time.sleep(0.01)
print(json.dumps({"seen": sorted(seen), "errors": errors, "reads": reads}), flush=True)
"""


def test_readers_of_the_published_file_never_fail_during_a_build(published, monkeypatch, tmp_path):
    """A reader opening, querying and closing rwe.duckdb in a loop while a whole build and publish run
    never meets a lock error or a half-written table."""
    monkeypatch.setenv("RWE_DATA_DIR", str(published))
    target, stop = published / "warehouse" / "rwe.duckdb", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(target), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline() == "reading\n"  # reading before the build starts
        with dg.instance_for_test() as instance:
            assert defs.resolve_job_def("build").execute_in_process(instance=instance).success
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    summary = json.loads(out)
    assert summary["errors"] == []
    assert summary["seen"] == [27] and summary["reads"] > 1


def test_the_builds_dqd_results_say_which_checks_cannot_fail(published):
    """The build's own DQD run records why each structural check cannot fail, and its pass rate counts
    only the checks that can (lib/quality/dqd.py summarize)."""
    with duckdb.connect(str(published / "warehouse" / "rwe.duckdb"), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT cannot_fail_reason IS NULL, count(*) FROM results.dq_check_results "
                "WHERE run_id = (SELECT run_id FROM results.dq_check_results ORDER BY run_at DESC LIMIT 1) "
                "GROUP BY ALL"
            ).fetchall()
        )
        reason = con.execute(
            "SELECT cannot_fail_reason FROM results.dq_check_results WHERE check_id = 'isRequired.person.person_id'"
        ).fetchone()[0]
    assert rows == {True: 1371, False: 1164}
    assert reason == "the DDL declares the field NOT NULL"
