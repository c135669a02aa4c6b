"""An incremental CDM build that fails reruns from the failed step (lib/cdm/resume.py): in its scratch
build (the narrowed inputs restored with the session) or in the merge into the last build (the
finished scratch database kept), and ends equal to a full build of the same lake."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import incremental
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets_tests.test_cdm_incremental import (  # noqa: F401 (fixtures)
    VOCAB,
    _cdm_tables,
    _differing_rows,
    _full_build,
    data,
    pinned_code,
    updated,
)

# the base and update pipeline of test_cdm_incremental (~40 s), then two failed and resumed builds
pytestmark = pytest.mark.slow


class Injected(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["genomics", "merge"])
def test_a_failed_incremental_build_resumes_and_equals_a_full_build(data, monkeypatch, where):  # noqa: F811
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
