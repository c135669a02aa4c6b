"""Resuming a failed CDM build (lib/cdm/resume.py) when the resumed build dies without recording a
failure, and when a step's inputs were registered as Arrow (object storage), which a saved session
cannot hold."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build, resume, reuse
from rwe_assets.settings import REPO_DIR
from rwe_assets.synthetic import generate
from rwe_assets_tests.crash_harness import stage_and_link
from rwe_assets_tests.lib.cdm import test_build_resume as shared
from rwe_assets_tests.lib.cdm.test_build_resume import NAMES, Injected, cdm_build, differing_rows

built, counted = shared.built, shared.counted  # test_build_resume's fixtures (the batch built once)


class Killed(BaseException):
    """What reaches the build when its process is terminated (Dagster, KeyboardInterrupt): no
    `except Exception` runs."""


def test_a_resumed_build_killed_after_the_failed_step_starts_over(built, counted, tmp_path, monkeypatch):
    """The record is used once: a resumed build killed at a later step leaves none, so the next build
    does not redo the steps the killed one added to the partial database (rows twice)."""
    lake_dir, registry, reference, _ = built
    runs, fail = counted
    warehouse = tmp_path / "warehouse"
    fail[0] = "measurement"
    with pytest.raises(Injected):
        cdm_build(lake_dir, registry, warehouse)
    fail[0] = None
    real = build._timed_step

    def killed_at_drug_era(state, timer, step, number):
        if step.name == "drug_era":
            raise Killed()
        real(state, timer, step, number)

    monkeypatch.setattr(build, "_timed_step", killed_at_drug_era)
    with pytest.raises(Killed):
        cdm_build(lake_dir, registry, warehouse)
    assert not (warehouse / resume.SIDECAR).exists()
    monkeypatch.setattr(build, "_timed_step", real)
    runs.clear()
    report = cdm_build(lake_dir, registry, warehouse)
    assert report.resumed_from is None and set(runs) == set(NAMES)
    assert set(differing_rows(reference.path, report.path).values()) == {0}


def test_a_resumed_build_failing_after_its_steps_leaves_no_record(built, counted, tmp_path, monkeypatch):
    """A failure past the steps (recording the fingerprint) is no step's: the next build starts over."""
    lake_dir, registry, _, _ = built
    _, fail = counted
    warehouse = tmp_path / "warehouse"
    fail[0] = "reconciliation"
    with pytest.raises(Injected):
        cdm_build(lake_dir, registry, warehouse)
    fail[0] = None

    def unwritable(*_):
        raise OSError("disk full")

    monkeypatch.setattr(reuse, "record_fingerprint", unwritable)
    with pytest.raises(OSError):
        cdm_build(lake_dir, registry, warehouse)
    assert not (warehouse / resume.SIDECAR).exists() and not (warehouse / "build.duckdb").exists()


def test_registered_data_a_later_step_reads_must_be_registered_again(tmp_path):
    """Registered Arrow is saved by name only: a resume whose inputs lack it fails once, naming it, and
    discards the record (the next build starts over) instead of failing at the step on every rerun."""
    with duckdb.connect() as con:
        con.register("stg_arrow", pa.table({"x": [1]}))
        con.execute("CREATE TEMP TABLE kept AS SELECT 2 AS x")
        resume.save(con, tmp_path, resume.Record("key", ["setup"], "location"))
    with duckdb.connect() as con:
        resume.restore(con, tmp_path, reads={"kept"})  # not read by the steps left: no matter
        assert con.execute("SELECT x FROM kept").fetchall() == [(2,)]
    with duckdb.connect() as con, pytest.raises(RuntimeError, match=r"\['stg_arrow'\]"):
        resume.restore(con, tmp_path, reads={"stg_arrow"})
    with duckdb.connect() as con:
        con.register("stg_arrow", pa.table({"x": [1]}))  # what the build's register does
        resume.restore(con, tmp_path, reads={"stg_arrow"})


@pytest.mark.slow  # a synthetic lake with genomics staging (the small batch has none), built twice (~15 s)
def test_a_resume_after_genomics_registers_its_arrow_inputs_again(tmp_path, monkeypatch):
    """On object storage lake.register_view registers Arrow; the genomics staging tables the genomics
    step and the reconciliation read come again from the build's registration on a resume."""
    data = tmp_path / "data"
    generate(data, 20, seed=1)  # a seed whose 20 persons include lab samples
    stage_and_link(data)
    real_view = lake.register_view

    def as_on_object_storage(con, name, path):
        if not name.startswith("stg_genomics_"):
            return real_view(con, name, path)
        table = lake.open_table(path)
        if table is not None:
            lake._register(con, name, table.to_pyarrow_dataset())
        return table is not None

    monkeypatch.setattr(lake, "register_view", as_on_object_storage)
    real_step, fail = build._run_step, ["reconciliation"]

    def run_step(state, step):
        if step.name == fail[0]:
            raise Injected(step.name)
        real_step(state, step)

    monkeypatch.setattr(build, "_run_step", run_step)
    vocab, warehouse = REPO_DIR / "vocab", data / "warehouse"
    with pytest.raises(Injected):
        build.build_cdm(data / "lake", vocab, warehouse, incremental_build=False)
    fail[0] = None
    report = build.build_cdm(data / "lake", vocab, warehouse, incremental_build=False)
    assert report.resumed_from == "reconciliation"
    staged = {r.cdm_table: r.staged_rows for r in report.reconciliation}
    assert staged["specimen"] > 0 and staged["variant_occurrence"] > 0, report.reconciliation
