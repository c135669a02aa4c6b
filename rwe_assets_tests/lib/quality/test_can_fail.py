"""Checks that can fail: which DQD checks cannot fail on a CDM built from the spec (decided from the
DDL, counted apart from the pass rate), the command's exit status, and the one definition of the latest
DQD run that the publish gate and the per-table asset checks share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

import duckdb
import pytest

from rwe_assets.defs.quality.table_checks import latest_outcomes
from rwe_assets.lib import cdm_spec as cdm_spec_module
from rwe_assets.lib.dqd_spec import applicable_checks
from rwe_assets.lib.quality import catalogue, dqd, runner
from rwe_assets.lib.quality.dqd import CheckResult, cannot_fail_reason, exit_code, run_checks, summarize
from rwe_assets.lib.quality.gate import blocking_failures, latest_run_id
from rwe_assets_tests.lib.quality.test_dqd import TODAY, clean_cdm, condition


def result(check_name: str, status: str, reason: str | None = None) -> CheckResult:
    return CheckResult(
        **{
            **{f.name: None for f in dataclasses.fields(CheckResult)},
            "check_id": f"{check_name}.person",
            "check_name": check_name,
            "cdm_table": "person",
            "kahn_category": "Conformance",
            "status": status,
            "failed": status == "FAIL",
            "not_applicable": status == "NOT_APPLICABLE",
            "is_error": status == "ERROR",
            "cannot_fail_reason": reason,
        }
    )


# --- which checks cannot fail -------------------------------------------------------------------------


def test_checks_the_ddl_enforces_cannot_fail_and_the_rest_can():
    reasons = {}
    for check in applicable_checks():
        reasons.setdefault(check.check_name, set()).add(cannot_fail_reason(check))
    assert reasons["cdmTable"] == {"the DDL creates the table"}
    assert reasons["cdmField"] == {"the DDL creates the field"}
    assert reasons["isRequired"] == {"the DDL declares the field NOT NULL"}
    # no constraint in the DDL: a duplicate key or an orphan is possible, so these count
    assert reasons["isPrimaryKey"] == {None} and reasons["isForeignKey"] == {None}
    assert reasons["fkDomain"] == {None} and reasons["plausibleAfterBirth"] == {None}
    # the catalogue's 100 % thresholds (characterization) cannot be exceeded
    assert "threshold 100 %: no share of violated rows exceeds it" in reasons["measureValueCompleteness"]
    checks = list(applicable_checks())
    cannot = sum(cannot_fail_reason(c) is not None for c in checks)
    assert (len(checks), cannot) == (2535, 1164)


def test_a_ddl_without_not_null_makes_required_checks_count(monkeypatch):
    """The rule reads the DDL: drop NOT NULL from it and every isRequired check can fail again."""
    real_ddl = cdm_spec_module.cdm_ddl
    monkeypatch.setattr(
        catalogue, "cdm_ddl", lambda schema: [s.replace(" NOT NULL", "") for s in real_ddl(schema)]
    )
    catalogue._spec_guarantees.cache_clear()
    try:
        required = [c for c in applicable_checks() if c.check_name == "isRequired"]
        assert {cannot_fail_reason(c) for c in required} == {None}
    finally:
        catalogue._spec_guarantees.cache_clear()


def test_pass_rate_counts_only_applicable_checks_that_can_fail():
    results = [
        result("cdmField", "PASS", "the DDL creates the field"),
        result("cdmField", "PASS", "the DDL creates the field"),
        result("isRequired", "NOT_APPLICABLE", "the DDL declares the field NOT NULL"),
        result("isPrimaryKey", "PASS"),
        result("fkDomain", "FAIL"),
        result("plausibleGender", "NOT_APPLICABLE"),
    ]
    summary = summarize(results)
    assert summary["pass_rate"] == 0.5  # 1 of the 2 applicable checks that can fail
    assert summary["dqd_pass_rate"] == 0.75  # what counting the structural ones would claim
    assert summary["cannot_fail"] == 3
    assert summary["cannot_fail_checks"]["by_reason"] == {
        "the DDL creates the field": 2,
        "the DDL declares the field NOT NULL": 1,
    }
    assert summary["by_check"]["cdmField"]["pass_rate"] is None  # nothing there can fail
    # a check that cannot fail but does (a database not built from the spec) is still a failure
    broken = summarize([result("cdmTable", "FAIL", "the DDL creates the table")])
    assert (broken["failed"], broken["cannot_fail_checks"]["failed"]) == (1, 1)


def test_results_record_why_a_check_cannot_fail():
    con = clean_cdm()
    checks = [c for c in applicable_checks() if c.table == "person"]
    results = run_checks(con, run_id="r", today=TODAY, checks=checks)
    stored = dict(
        con.execute(
            "SELECT check_id, cannot_fail_reason FROM results.dq_check_results WHERE run_id = 'r'"
        ).fetchall()
    )
    assert stored["cdmTable.person"] == "the DDL creates the table"
    assert stored["isPrimaryKey.person.person_id"] is None
    assert {r.check_id: r.cannot_fail_reason for r in results} == stored


# --- exit status --------------------------------------------------------------------------------------


def test_exit_code_policies():
    value_failure = [result("isPrimaryKey", "PASS"), result("fkDomain", "FAIL")]
    structural_failure = [result("isPrimaryKey", "FAIL")]
    error = [result("plausibleGender", "ERROR")]
    assert exit_code([result("fkDomain", "PASS"), result("fkDomain", "NOT_APPLICABLE")]) == 0
    assert exit_code(value_failure) == exit_code(structural_failure) == exit_code(error) == 1
    assert exit_code(value_failure, "blocking") == 0
    assert exit_code(structural_failure, "blocking") == 1
    assert exit_code(structural_failure, "never") == 0
    with pytest.raises(ValueError):
        exit_code([], "sometimes")


@pytest.fixture(scope="module")
def cdm_file(tmp_path_factory):
    """The clean test CDM written to a file, as the command reads one."""
    path = tmp_path_factory.mktemp("dqd") / "cdm.duckdb"
    con = clean_cdm()
    con.execute(f"ATTACH '{path}' AS target")
    con.execute("COPY FROM DATABASE memory TO target")
    con.close()
    return path


def test_the_command_exits_1_when_a_check_fails_and_0_when_none_does(cdm_file, capsys, tmp_path, monkeypatch):
    # the command end to end, on the checks of two tables (the whole catalogue takes ~10 s a run)
    chosen = [c for c in applicable_checks() if c.table in ("person", "condition_occurrence")]
    monkeypatch.setattr(runner, "applicable_checks", lambda catalogue=None: chosen)
    cannot = sum(cannot_fail_reason(c) is not None for c in chosen)
    assert dqd.main([str(cdm_file)]) == 0
    out = capsys.readouterr().out
    assert f"checks that cannot fail on a CDM built from the spec: {cannot}, 0 failed" in out

    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(cdm_file.read_bytes())
    with duckdb.connect(str(broken)) as con:  # a condition with no standard concept: a value check fails
        condition(con, 9, 1, dt.date(2020, 3, 2), condition_concept_id=0)
    assert dqd.main([str(broken), "--json"]) == 1
    failures = {f["check_id"] for f in json.loads(capsys.readouterr().out)["failures"]}
    assert "standardConceptRecordCompleteness.condition_occurrence.condition_concept_id" in failures
    assert dqd.main([str(broken), "--fail-on", "blocking"]) == 0  # no publish-blocking check failed


# --- the latest run -----------------------------------------------------------------------------------


def two_runs(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """An older run where everything passed, then a newer one where a primary key is duplicated; the
    newer run's id sorts first, as random UUIDs do half of the time."""
    checks = [c for c in applicable_checks() if c.table == "condition_occurrence"]
    older, newer = "f" + uuid.uuid4().hex, "0" + uuid.uuid4().hex
    run_checks(con, run_id=older, today=TODAY, checks=checks)
    con.execute("UPDATE cdm.condition_occurrence SET condition_occurrence_id = 1")
    run_checks(con, run_id=newer, today=TODAY, checks=checks)
    return older, newer


def test_the_latest_run_is_the_one_that_started_last():
    con = clean_cdm()
    older, newer = two_runs(con)
    assert max(older, newer) == older  # what max(run_id) would have picked
    assert latest_run_id(con) == newer
    # the publish gate and the table checks read that same run
    assert blocking_failures(con) == [("isPrimaryKey.condition_occurrence.condition_occurrence_id", 2)]
    applicable, failed = latest_outcomes(con)[("condition_occurrence", True)]
    assert failed == ["isPrimaryKey.condition_occurrence.condition_occurrence_id"] and applicable > 10
    assert latest_run_id(duckdb_with_empty_results()) is None


def duckdb_with_empty_results() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    dqd.write_results(con, [])
    return con
