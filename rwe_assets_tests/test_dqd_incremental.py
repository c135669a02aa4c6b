"""The DQD checks after an incremental CDM build (issue 26, lib/quality/incremental.py) publish what a
full run on a full build of the same lake publishes: every check's status and counts, on a generated
population with an update batch (new persons, new events, corrections, retractions)."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import incremental, reuse
from rwe_assets.lib.quality import incremental as dq_incremental
from rwe_assets.lib.quality.dqd import run_checks
from rwe_assets.lib.staging import incremental_state
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate
from rwe_assets.synthetic.update import generate_update
from rwe_assets_tests.crash_harness import stage_and_link
from rwe_assets_tests.lib.quality.test_incremental_checks import comparable

pytestmark = pytest.mark.slow  # a pipeline run, base then update, and three DQD runs (~60 s)
VOCAB = REPO_DIR / "vocab"
TODAY = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def pinned_code(monkeypatch):
    """As in test_cdm_incremental.py: the digests pinned against edits while the suite runs, and the
    share threshold raised for a 10% update of 50 persons."""
    monkeypatch.setattr(incremental, "MAX_PERSON_SHARE", 0.5)
    monkeypatch.setattr(reuse, "code_digest", lambda: "pinned")
    monkeypatch.setattr(incremental_state, "staging_digest", lambda *_: "pinned")


def checks(warehouse, run_id: str):
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        results = run_checks(con, run_id=run_id, today=TODAY)
        mode = con.execute(
            f"SELECT mode, persons FROM results.{dq_incremental.RUN_TABLE} WHERE run_id = $r", {"r": run_id}
        ).fetchone()
    return results, mode


def test_checks_after_an_incremental_build_equal_a_full_runs(tmp_path):
    generate(tmp_path / "base", 50, seed=11)
    generate_update(tmp_path / "base", tmp_path / "update", fraction=0.1)
    data = tmp_path / "data"
    shutil.copytree(tmp_path / "base" / "landing", data / "landing")
    stage_and_link(data)
    cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    assert checks(data / "warehouse", "base")[1][0] == "whole"
    shutil.copytree(tmp_path / "update" / "landing", data / "landing", dirs_exist_ok=True)
    stage_and_link(data)
    report = cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    assert report.mode == "incremental", report.mode_reason

    merged, mode = checks(data / "warehouse", "update")
    assert mode == ("per person", report.persons_rebuilt)
    cdm_build.build_cdm(data / "lake", VOCAB, data / "full", incremental_build=False)
    full, full_mode = checks(data / "full", "full")
    assert full_mode[0] == "whole"
    assert comparable(merged) == comparable(full)
    assert any(r.failed for r in full) and any(r.passed for r in full)  # the comparison compares outcomes
