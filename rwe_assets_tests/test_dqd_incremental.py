"""The DQD checks after an incremental CDM build (issue 26, lib/quality/incremental.py) publish what a
full run on a full build of the same lake publishes: every check's status and counts, on a generated
population with an update batch (new persons, new events, corrections, retractions)."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.quality import incremental as dq_incremental
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets_tests import incremental_lake as shared
from rwe_assets_tests.lib.quality.test_incremental_checks import comparable

pytestmark = pytest.mark.slow  # an incremental build on the shared lake (conftest) and three DQD runs
VOCAB = shared.VOCAB
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def pinned_code():
    """As in test_cdm_incremental.py: the digests pinned, the share threshold raised."""
    with shared.pinned_code():
        yield


def checks(warehouse, run_id: str):
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        results = run_checks(con, run_id=run_id, today=TODAY)
        mode = con.execute(
            f"SELECT mode, persons FROM results.{dq_incremental.RUN_TABLE} WHERE run_id = $r", {"r": run_id}
        ).fetchone()
    return results, mode


def test_checks_after_an_incremental_build_equal_a_full_runs(incremental_lake, tmp_path):
    # the base build, the update staged (the checks read only the warehouse), and a full build beside
    data = tmp_path / "data"
    shutil.copytree(incremental_lake, data)
    assert checks(data / "warehouse", "base")[1][0] == "whole"
    report = cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    assert report.mode == "incremental", report.mode_reason

    merged, mode = checks(data / "warehouse", "update")
    assert mode == ("per person", report.persons_rebuilt)
    full, full_mode = checks(data / shared.FULL, "full")
    assert full_mode[0] == "whole"
    assert comparable(merged) == comparable(full)
    assert any(r.failed for r in full) and any(r.passed for r in full)  # the comparison compares outcomes
