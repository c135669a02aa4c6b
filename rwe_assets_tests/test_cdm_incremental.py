"""The incremental CDM build (issue 26, lib/cdm/incremental.py): after an update batch it rebuilds only
the persons staging touched, and the result equals a full build of the same lake by the comparison
tool, every table, and in the results the build derives from its intermediates. A forced change falls
back to a full build; a plan that forgets the persons of retracted rows keeps those rows (and so
differs), which is what the equality guards."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import incremental, reuse
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.sources import load_registry
from rwe_assets_tests import incremental_lake as shared

pytestmark = pytest.mark.slow  # builds on the base-then-update lake shared with test_dqd_incremental
VOCAB = shared.VOCAB
RESULTS = ("unmapped_codes", "mapping_summary", "reconciliation", "person_exclusion")


@pytest.fixture(scope="module", autouse=True)
def pinned_code():
    with shared.pinned_code():
        yield


@pytest.fixture
def data(incremental_lake, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(incremental_lake, copy)
    return copy


def _full_build(data: Path) -> Path:
    """The full build of the same lake (built with the lake, it only reads it)."""
    return data / shared.FULL / "build.duckdb"


def _differing_rows(a: Path, b: Path, table: str) -> int:
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        one = f"SELECT * FROM a.{table} EXCEPT ALL SELECT * FROM b.{table}"
        other = f"SELECT * FROM b.{table} EXCEPT ALL SELECT * FROM a.{table}"
        return con.execute(
            f"SELECT (SELECT count(*) FROM ({one})) + (SELECT count(*) FROM ({other}))"
        ).fetchone()[0]


def _cdm_tables(database: Path) -> list[str]:
    """The CDM tables but CDM_SOURCE (the build's time and input files)."""
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cdm' "
            "AND table_name <> 'cdm_source' ORDER BY 1"
        ).fetchall()
    return [name for (name,) in rows]


def test_the_incremental_build_equals_a_full_build_of_the_same_lake(data):
    before = data / "warehouse" / "base.duckdb"
    shutil.copy(data / "warehouse" / "build.duckdb", before)
    report = cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    assert report.mode == "incremental", report.mode_reason
    assert 0 < report.persons_rebuilt < report.row_counts["person"]
    built = data / "warehouse" / "build.duckdb"
    full = _full_build(data)
    comparison = compare_cdms(built, full)
    assert comparison.same, format_comparison(comparison)
    # row for row, ids included: the id maps are shared, observation periods and eras numbered again
    # (the comparison above leaves a table's own id out)
    for table in _cdm_tables(built):
        assert _differing_rows(built, full, f"cdm.{table}") == 0, table
    for table in RESULTS:  # sums over the per-person ledger (lib/cdm/ledger.py)
        assert _differing_rows(built, full, f"results.{table}") == 0, table
    assert not compare_cdms(before, built).same  # the update did change the CDM
    # a build right after finds its own inputs: kept as it is
    assert cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse").mode == "reused"


def test_a_forced_change_falls_back_to_a_full_build(data, monkeypatch):
    lake_dir, final = data / "lake", data / "warehouse" / "build.duckdb"
    store_digest = reuse.recorded_state(final)["vocabulary"]
    state = reuse.input_state(lake_dir, store_digest, load_registry())
    assert incremental.plan_build(lake_dir, final, state).mode == "incremental"
    other_vocabulary = {**state, "vocabulary": "another digest"}
    plan = incremental.plan_build(lake_dir, final, other_vocabulary)
    assert (plan.mode, plan.reason) == ("full", "the vocabulary changed since the last build")
    assert incremental.plan_build(lake_dir, final, {**state, "code": "x"}).mode == "full"
    # staging ran twice since the last build (its _touched lists only the last run's changes)
    prior = reuse.recorded_state(final)["tables"]
    table_id, version = prior["staging/event"].rsplit(":", 1)
    two_runs = {**prior, "staging/event": f"{table_id}:{int(version) - 1}"}
    problem = incremental._staging_problem(lake_dir, two_runs, state["tables"])
    assert problem and "more than the last staging run" in problem
    # over the share of persons, the build itself says full and why
    monkeypatch.setattr(incremental, "MAX_PERSON_SHARE", 0.0)
    report = cdm_build.build_cdm(lake_dir, VOCAB, data / "warehouse")
    assert report.mode == "full" and "threshold" in report.mode_reason


def test_a_person_whose_only_change_is_a_retraction_loses_the_row(data, monkeypatch):
    """Break the plan: leave out the persons only a retraction (a `delete` in staging/_touched) touched.
    Their retracted rows stay, and the comparison with a full build sees them."""
    lake_dir = data / "lake"
    with duckdb.connect() as con:
        con.register("touched", lake.read_table(lake.table_path(lake_dir, "staging", "_touched")))
        con.register("crosswalk", lake.read_table(lake.table_path(lake_dir, "linkage", "person_crosswalk")))
        retracted_only = (
            con.sql(
                "SELECT x.person_id FROM touched JOIN crosswalk x USING (source_system, source_person_id) "
                "GROUP BY x.person_id HAVING bool_and(change = 'delete')"
            )
            .to_arrow_table()["person_id"]
            .to_pylist()
        )
    assert retracted_only, "the update batch should retract a record of a person it changes nothing else of"
    real_plan = incremental.plan_build

    def forgetful(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        if plan.persons is None:  # the full build compared with
            return plan
        kept = [p for p in plan.persons["person_id"].to_pylist() if p not in retracted_only]
        return incremental.Plan(plan.mode, plan.reason, pa.table({"person_id": pa.array(kept, pa.int64())}))

    monkeypatch.setattr(incremental, "plan_build", forgetful)
    assert cdm_build.build_cdm(lake_dir, VOCAB, data / "warehouse").mode == "incremental"
    comparison = compare_cdms(data / "warehouse" / "build.duckdb", _full_build(data))
    assert not comparison.same
    # the retracted rows are still there (what derives from them, eras and periods, differs both ways)
    assert any(t.only_in_a > t.only_in_b for t in comparison.differing), format_comparison(comparison)


# A failed incremental build reruns from the failed step (lib/cdm/resume.py): in its scratch build (the
# narrowed inputs restored with the session) or in the merge into the last build (the finished scratch
# database kept), and ends equal to a full build of the same lake. Here, beside the pipeline it shares.
class Injected(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["genomics", "merge"])
def test_a_failed_incremental_build_resumes_and_equals_a_full_build(data, monkeypatch, where):
    runs, real_step, real_merge = Counter(), cdm_build._run_step, incremental.merge
    failing = [True]

    def run_step(state, step):
        runs[step.name] += 1
        real_step(state, step)
        if step.name == where and failing[0]:
            raise Injected(step.name)

    def merge(*args):
        if where == "merge" and failing[0]:
            raise Injected("merge")
        real_merge(*args)

    monkeypatch.setattr(cdm_build, "_run_step", run_step)
    monkeypatch.setattr(incremental, "merge", merge)
    with pytest.raises(Injected):
        cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    failing[0] = False
    runs.clear()
    report = cdm_build.build_cdm(data / "lake", VOCAB, data / "warehouse")
    assert (report.mode, report.resumed_from) == ("incremental", where), report.mode_reason
    scratch_steps = [s.name for s in cdm_build.SCRATCH_STEPS]
    resumed = scratch_steps[scratch_steps.index(where) :] if where in scratch_steps else []
    assert set(runs) == set(resumed)
    built = data / "warehouse" / "build.duckdb"
    full = _full_build(data)
    comparison = compare_cdms(built, full)
    assert comparison.same, format_comparison(comparison)
    for table in _cdm_tables(built):
        assert _differing_rows(built, full, f"cdm.{table}") == 0, table
