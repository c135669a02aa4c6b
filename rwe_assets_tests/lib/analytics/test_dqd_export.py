"""The DQD JSON export: the viewer's layout, DQD's counting rules, small cells blanked."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import duckdb
import pytest

from rwe_assets.lib.analytics.dqd_export import dqd_json, write_dqd_json
from rwe_assets.lib.quality.dqd import CheckResult, run_checks, write_results
from rwe_assets_tests.lib.analytics.fixture_cdm import build_fixture_cdm

TOP_KEYS = {"startTimestamp", "endTimestamp", "executionTime", "CheckResults", "Metadata", "Overview"}
CHECK_KEYS = {
    "numViolatedRows", "pctViolatedRows", "numDenominatorRows", "executionTime", "queryText", "checkName",
    "checkLevel", "checkDescription", "cdmTableName", "cdmFieldName", "conceptId", "unitConceptId", "sqlFile",
    "category", "subcategory", "context", "warning", "error", "checkId", "failed", "passed", "isError",
    "notApplicable", "notApplicableReason", "thresholdValue", "notesValue",
}  # fmt: skip
OVERVIEW_KEYS = {
    "countTotal", "countPassed", "countErrorFailed", "countThresholdFailed", "countOverallFailed",
    "percentPassed", "percentFailed", *(f"count{kind}{category}" for kind in ("Total", "Failed", "Passed")
                                         for category in ("Plausibility", "Conformance", "Completeness")),
}  # fmt: skip
RUN_AT = dt.datetime(2026, 12, 6, 10, 0, 0)


def result(
    check_id: str, status: str, violated: int | None, denominator: int | None, **changes
) -> CheckResult:
    base = CheckResult(
        run_id="run-2", run_at=RUN_AT, check_id=check_id, check_name="isRequired", check_level="FIELD",
        cdm_table="person", cdm_field="gender_concept_id", concept_id=None, concept_ids=None,
        unit_concept_id=None, status=status, num_violated_rows=violated, num_denominator_rows=denominator,
        pct_violated_rows=(violated / denominator) if violated is not None and denominator else None,
        threshold_pct=0.0, failed=status == "FAIL", not_applicable=status == "NOT_APPLICABLE",
        not_applicable_reason="nothing to evaluate" if status == "NOT_APPLICABLE" else None,
        is_error=status == "ERROR", error_message="boom" if status == "ERROR" else None, severity="fatal",
        kahn_context="Validation", kahn_category="Conformance", kahn_subcategory="Relational",
        check_description="a check", execution_seconds=1.5, cannot_fail_reason=None, sql="SELECT 1",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        build_fixture_cdm(connection)
        write_results(connection, [dataclasses.replace(result("old", "FAIL", 50, 100), run_id="run-1",
                                                       run_at=RUN_AT - dt.timedelta(days=1))])  # fmt: skip
        write_results(
            connection,
            [
                result("a", "PASS", 0, 100),
                result("b", "FAIL", 50, 100, kahn_category="Completeness"),
                result("c", "FAIL", 3, 100, kahn_category="Plausibility"),  # 3 violating rows: a small cell
                result("d", "NOT_APPLICABLE", 0, 0),
                result("e", "ERROR", None, None),
            ],
        )
        yield connection


def test_layout_is_the_viewers(con, tmp_path):
    export = write_dqd_json(con, tmp_path / "dq_results.json", min_cell_count=5)
    document = json.loads((tmp_path / "dq_results.json").read_text())
    assert set(document) == TOP_KEYS
    assert export.run_id == "run-2" and export.checks == 5
    assert all(set(check) == CHECK_KEYS for check in document["CheckResults"])
    assert set(document["Overview"]) == OVERVIEW_KEYS
    assert document["startTimestamp"] == "2026-12-06 10:00:00"
    assert document["endTimestamp"] == "2026-12-06 10:00:07"  # 5 checks x 1.5 s
    assert document["executionTime"] == "8 secs"
    (metadata,) = document["Metadata"]
    assert metadata["cdmSourceName"] == "fixture" and metadata["cdmReleaseDate"] == "2026-01-02"
    assert "dqdVersion" in metadata


def test_overview_counts_as_dqd_does(con):
    document, _ = dqd_json(con, min_cell_count=5)
    overview = document["Overview"]
    assert overview["countTotal"] == 5
    assert overview["countPassed"] == 1
    assert overview["countErrorFailed"] == 1
    assert overview["countThresholdFailed"] == 2
    assert overview["countOverallFailed"] == 3  # DQD counts an errored check as failed
    assert overview["percentPassed"] == 25.0
    assert overview["countFailedPlausibility"] == 1 and overview["countTotalConformance"] == 3
    by_id = {c["checkId"]: c for c in document["CheckResults"]}
    check = by_id["field_isrequired_person_gender_concept_id"]  # DQD's id: level_name_table_field
    assert (
        check["cdmTableName"] == "PERSON" and check["sqlFile"] == "field_is_not_nullable.sql"
    )  # the catalogue's file name


def test_small_cells_are_blanked_but_the_status_kept(con):
    document, suppressed = dqd_json(con, min_cell_count=5)
    small = [c for c in document["CheckResults"] if c["category"] == "Plausibility"]
    assert suppressed == 1
    assert small[0]["numViolatedRows"] is None and small[0]["pctViolatedRows"] is None
    assert small[0]["numDenominatorRows"] is None
    assert small[0]["failed"] == 1
    shown = [c for c in document["CheckResults"] if c["category"] == "Completeness"]
    assert shown[0]["numViolatedRows"] == 50 and shown[0]["pctViolatedRows"] == 0.5
    document, suppressed = dqd_json(con, min_cell_count=1)
    assert suppressed == 0


def test_a_real_run_exports(tmp_path):
    with duckdb.connect() as con:
        build_fixture_cdm(con)
        results = run_checks(con, "cdm", "results", run_id="real", today=dt.date(2026, 12, 6))
        document, _ = dqd_json(con, min_cell_count=5)
    assert len(document["CheckResults"]) == len(results)
    assert document["Overview"]["countPassed"] == sum(r.status == "PASS" for r in results)


def test_no_run_is_an_error():
    with duckdb.connect() as con:
        build_fixture_cdm(con)
        write_results(con, [])
        with pytest.raises(LookupError):
            dqd_json(con)
