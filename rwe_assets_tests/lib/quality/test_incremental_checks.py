"""DQD checks after an incremental CDM build (lib/quality/incremental.py), on hand-written CDMs: the
per-person checks count the rebuilt persons' rows and merge them with the last run's counts; the
results equal a whole run's, and a violation on a rebuilt person alone still fails its check."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib.cdm import incremental as cdm_incremental
from rwe_assets.lib.cdm.reuse import record_fingerprint
from rwe_assets.lib.dqd_spec import applicable_checks
from rwe_assets.lib.quality import incremental
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets_tests.lib.quality.test_dqd import ACETAMINOPHEN, TODAY, clean_cdm, condition, drug

VOLATILE = ("run_id", "run_at", "execution_seconds")
TABLES = (
    "person",
    "condition_occurrence",
    "condition_era",
    "drug_exposure",
    "measurement",
    "observation_period",
)
CHECKS = [c for c in applicable_checks() if c.table in TABLES]
"""The checks of the tables the tests change and of those they join (the whole catalogue is slower)."""


def comparable(results) -> dict[str, dict]:
    """Each result but what differs between two runs of the same checks (id, time, seconds)."""
    return {
        r.check_id: {k: v for k, v in dataclasses.asdict(r).items() if k not in VOLATILE} for r in results
    }


@pytest.fixture
def build(tmp_path) -> duckdb.DuckDBPyConnection:
    """build.duckdb holding the clean CDM (two persons), built with fingerprint F0 and checked once."""
    path = tmp_path / "build.duckdb"
    memory = clean_cdm()
    memory.execute(f"ATTACH '{path}' AS f")
    memory.execute("COPY FROM DATABASE memory TO f")
    memory.close()
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA results")
    record_fingerprint(con, "F0")
    run_checks(con, run_id="base", checks=CHECKS, today=TODAY)
    yield con
    con.close()


def rebuild_person_2(con: duckdb.DuckDBPyConnection, change) -> Path:
    """What an incremental build does to the file: keep person 2's rows in the side file, replace
    them (`change`), record the new build's fingerprint. Returns the side file."""
    side = Path(
        con.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'build'").fetchone()[0]
    )
    side = side.with_name(cdm_incremental.REPLACED_FILE)
    con.execute("CREATE OR REPLACE TEMP TABLE affected AS SELECT 2::BIGINT AS person_id")
    cdm_incremental.keep_replaced_rows(con, side)
    change(con)
    record_fingerprint(con, "F1")
    return side


def run_mode(con, run_id: str) -> tuple:
    return con.execute(
        f"SELECT mode, persons, merged_checks > 0 FROM results.{incremental.RUN_TABLE} WHERE run_id = $r",
        {"r": run_id},
    ).fetchone()


def whole_run(con, side: Path, run_id: str):
    """The same checks counted over every row: a run that merged removed the side file, so nothing
    can be merged again."""
    assert not side.exists()
    results = run_checks(con, run_id=run_id, checks=CHECKS, today=TODAY)
    assert run_mode(con, run_id)[0] == "whole"
    return results


def change_person_2(con) -> None:
    con.execute("DELETE FROM cdm.drug_exposure WHERE person_id = 2")
    condition(con, 7, 2, dt.date(2021, 6, 1), condition_start_date=dt.date(2021, 6, 1))
    drug(con, 8, 2, dt.date(2021, 6, 2))
    con.execute("UPDATE cdm.measurement SET value_as_number = NULL WHERE person_id = 2")


def test_merged_counts_equal_a_whole_run(build):
    side = rebuild_person_2(build, change_person_2)
    merged = run_checks(build, run_id="incremental", checks=CHECKS, today=TODAY)
    assert run_mode(build, "incremental") == ("per person", 1, True)
    assert comparable(merged) == comparable(whole_run(build, side, "whole"))
    by_id = {r.check_id: r for r in merged}
    # person 2 lost a drug and gained one: the same denominator; a condition more
    assert by_id["isRequired.drug_exposure.drug_exposure_id"].num_denominator_rows == 2
    assert by_id["isRequired.condition_occurrence.condition_occurrence_id"].num_denominator_rows == 3


def test_a_violation_on_a_rebuilt_person_alone_fails_its_check(build):
    def wrong_domain(con):
        condition(con, 3, 2, dt.date(2020, 3, 1), condition_concept_id=ACETAMINOPHEN)

    side = rebuild_person_2(build, wrong_domain)
    results = {r.check_id: r for r in run_checks(build, run_id="incremental", checks=CHECKS, today=TODAY)}
    assert run_mode(build, "incremental") == ("per person", 1, True)
    check = results["fkDomain.condition_occurrence.condition_concept_id"]
    assert (check.num_violated_rows, check.num_denominator_rows, check.status) == (1, 3, "FAIL")
    whole = {r.check_id: r for r in whole_run(build, side, "whole")}
    assert comparable(results.values()) == comparable(whole.values())


def test_checks_of_another_build_than_the_one_changed_count_everything(build):
    """The last run checked F0; a build made from another one (the mark says F9) is counted whole."""
    rebuild_person_2(build, change_person_2)
    build.execute(f"UPDATE {cdm_incremental.BUILD_MARK} SET base_fingerprint = 'F9'")
    run_checks(build, run_id="after", checks=CHECKS, today=TODAY)
    mode, persons, _ = run_mode(build, "after")
    assert (mode, persons) == ("whole", None)
    (reason,) = build.execute(
        f"SELECT reason FROM results.{incremental.RUN_TABLE} WHERE run_id = 'after'"
    ).fetchone()
    assert "did not check the build" in reason


def test_only_per_person_checks_are_merged():
    """Primary keys, foreign keys to visits and providers, visit windows, distinct source values and
    era ids are counted whole; a condition's own fields and its person's birth per person."""
    sliced = set(cdm_incremental.sliced_tables())
    by_id = {c.check_name + "." + c.table + "." + (c.field or ""): c for c in applicable_checks()}
    per_person = {key for key, c in by_id.items() if incremental._per_person(c, sliced)}
    assert {
        "isRequired.condition_occurrence.person_id",
        "fkDomain.condition_occurrence.condition_concept_id",
        "plausibleAfterBirth.condition_occurrence.condition_start_date",
        "isForeignKey.condition_occurrence.person_id",
    } <= per_person
    assert (
        not {
            "isPrimaryKey.condition_occurrence.condition_occurrence_id",
            "isForeignKey.condition_occurrence.visit_occurrence_id",
            "isForeignKey.condition_occurrence.provider_id",
            "withinVisitDates.condition_occurrence.condition_start_date",
            "sourceValueCompleteness.condition_occurrence.condition_source_value",
            "isRequired.condition_era.condition_era_id",
            "isRequired.location.location_id",
        }
        & per_person
    )
