"""A failed CDM build reruns from the failed step (lib/cdm/resume.py): the steps before it do not run
again, the result equals an uninterrupted build's, and changed inputs start the build over."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.defs.cdm import assets as cdm_assets
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build, intermediates, resume, reuse
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.cdm.results import exclude_unobserved_persons
from rwe_assets.lib.cdm.steps import STEPS, Step
from rwe_assets.lib.linkage.crosswalk import build_crosswalk
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.cdm.test_build import BATCH
from rwe_assets_tests.lib.staging.test_build import patient, synthea_registry

NAMES = [s.name for s in STEPS]
# test_build's batch and a person with no event at all, whom the exclusion step removes from PERSON
UNOBSERVED = {**BATCH, "patients.csv": BATCH["patients.csv"] + patient("p4", birth="2001-02-03", first="Di")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The batch staged and linked, and its CDM built once without interruption (the reference)."""
    tmp_path, registry = tmp_path_factory.mktemp("resume"), synthea_registry()
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    land(landing, "site", "b1", UNOBSERVED)
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    build_staging(lake_dir, registry)
    con = staging_connection()
    pii = lake.open_table(lake.table_path(lake_dir, "staging", "person_pii")).to_pyarrow_dataset()
    con.register("person_pii", pii)
    build_crosswalk(con, lake_dir, "test-key")
    changed: dict[str, set[str]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "_run_step", watching(build._run_step, changed))
        report = cdm_build(lake_dir, registry, tmp_path / "reference")
    with duckdb.connect(str(report.path), read_only=True) as db:
        excluded = db.execute("SELECT count(*) FROM results.person_exclusion").fetchone()[0]
    assert excluded == 1  # the case the partial failure below needs
    return lake_dir, registry, report, changed


def watching(run_step, changed: dict[str, set[str]]):
    """`run_step` noting, per step, the CDM and results tables it found and changed the rows of."""

    def tables(con) -> dict[str, int]:
        names = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE NOT temporary AND schema_name IN ('cdm', 'results')"
        ).fetchall()
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}

    def run(state, step):
        before = tables(state.con)
        run_step(state, step)
        after = tables(state.con)
        # a table the step created is dropped by the undo whatever it holds: those it found count
        changed[step.name] = {t for t, rows in after.items() if t in before and before[t] != rows}

    return run


class Injected(RuntimeError):
    """The failure a test injects into a step."""


@pytest.fixture
def counted(monkeypatch):
    """Counts the steps run; `fail[0]` names a step that raises after its actions ran (the hardest
    case for the undo: everything it writes is written)."""
    runs, fail, real = Counter(), [None], build._run_step

    def run_step(state, step):
        runs[step.name] += 1
        real(state, step)
        if step.name == fail[0]:
            raise Injected(f"injected into {step.name}")

    monkeypatch.setattr(build, "_run_step", run_step)
    return runs, fail


def cdm_build(lake_dir: Path, registry, warehouse: Path) -> build.CdmBuildReport:
    return build.build_cdm(lake_dir, REPO_DIR / "vocab", warehouse, registry=registry, reuse_unchanged=False)


def differing_rows(a: Path, b: Path) -> dict[str, int]:
    """Rows in one file and not the other, per cdm and results table (CDM_SOURCE's build time aside)."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
        tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = 'a' "
            "AND schema_name IN ('cdm', 'results') AND table_name NOT IN ('cdm_source') ORDER BY 1"
        ).fetchall()
        found = {}
        for (table,) in tables:
            one = f"SELECT * FROM a.{table} EXCEPT ALL SELECT * FROM b.{table}"
            other = f"SELECT * FROM b.{table} EXCEPT ALL SELECT * FROM a.{table}"
            found[table] = con.execute(
                f"SELECT (SELECT count(*) FROM ({one})) + (SELECT count(*) FROM ({other}))"
            ).fetchone()[0]
    return found


def test_a_failed_build_reruns_from_the_failed_step_and_equals_an_uninterrupted_one(built, counted, tmp_path):
    lake_dir, registry, reference, _ = built
    runs, fail = counted
    warehouse = tmp_path / "warehouse"
    fail[0] = "exclude_unobserved_persons"  # a fix-up: its DELETEs and INSERT are rolled back
    with pytest.raises(Injected) as raised:
        cdm_build(lake_dir, registry, warehouse)
    assert (
        "a rerun with the same inputs starts at step 'exclude_unobserved_persons'" in raised.value.__notes__
    )
    assert (warehouse / resume.SIDECAR).is_file() and not (warehouse / "build.duckdb").exists()
    stored = warehouse / intermediates.DIRECTORY
    kept = {"mapped_event", "ids_condition_occurrence", "rollup_visit_map"}  # by SQL, by code, the rollup
    assert {path.stem for path in stored.glob("*.parquet")} >= kept  # saved by their views' SQL, not copied
    with duckdb.connect(str(warehouse / resume.SIDECAR), read_only=True) as sidecar:
        saved = {name for (name,) in sidecar.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        views = dict(sidecar.execute("SELECT name, sql FROM saved_view").fetchall())
    assert not saved & kept and all(f"{name}.parquet" in views[name] for name in kept)
    failed_at = NAMES.index("exclude_unobserved_persons")
    fail[0] = None
    runs.clear()
    report = cdm_build(lake_dir, registry, warehouse)
    assert report.resumed_from == "exclude_unobserved_persons"
    assert set(runs) == set(NAMES[failed_at:]) and set(runs.values()) == {1}  # the earlier ones not again
    comparison = compare_cdms(reference.path, report.path)
    assert comparison.same, format_comparison(comparison)
    assert set(differing_rows(reference.path, report.path).values()) == {0}
    assert (report.row_counts, report.reconciliation, report.unmapped_rows, report.visits_merged) == (
        reference.row_counts,
        reference.reconciliation,
        reference.unmapped_rows,
        reference.visits_merged,
    )
    assert not (warehouse / resume.SIDECAR).exists()  # a finished build leaves no record
    assert not stored.exists()  # nor the intermediates' files


def test_every_table_a_step_changes_is_declared(built):
    """What the undo of a failed step empties (lib/cdm/resume.py) is what the step table declares."""
    _, _, _, changed = built
    undeclared = {
        step.name: sorted(changed[step.name] - set(step.writes))
        for step in STEPS
        if changed[step.name] - set(step.writes)
    }
    assert undeclared == {}


def test_a_rerun_with_changed_inputs_starts_over(built, counted, tmp_path, monkeypatch):
    lake_dir, registry, _, _ = built
    runs, fail = counted
    warehouse = tmp_path / "warehouse"
    fail[0] = "measurement"
    with pytest.raises(Injected):
        cdm_build(lake_dir, registry, warehouse)
    fail[0] = None
    runs.clear()
    monkeypatch.setattr(reuse, "code_digest", lambda: "other code")  # the code changed since
    report = cdm_build(lake_dir, registry, warehouse)
    assert report.resumed_from is None and set(runs) == set(NAMES)


class HalfDone:
    """A connection that fails at the statement starting with `at`: the step stops halfway."""

    def __init__(self, con, at: str):
        self.con, self.at = con, at

    def execute(self, statement, *args):
        if statement.startswith(self.at):
            raise Injected(f"injected at {statement[:40]}")
        return self.con.execute(statement, *args)


def test_a_fix_up_failing_halfway_is_rolled_back(built, counted, tmp_path, monkeypatch):
    """The exclusion step fails after recording its persons, before deleting them from PERSON: rerun
    without the rollback, it would record them twice."""
    lake_dir, registry, reference, _ = built
    runs, _ = counted
    warehouse = tmp_path / "warehouse"
    halfway = lambda con: exclude_unobserved_persons(HalfDone(con, "DELETE FROM cdm.person"))  # noqa: E731
    monkeypatch.setattr(build, "_exclude_unobserved_persons", halfway)
    with pytest.raises(Injected):
        cdm_build(lake_dir, registry, warehouse)
    monkeypatch.setattr(build, "_exclude_unobserved_persons", exclude_unobserved_persons)
    runs.clear()
    report = cdm_build(lake_dir, registry, warehouse)
    assert report.resumed_from == "exclude_unobserved_persons" and runs["setup"] == 0
    assert set(differing_rows(reference.path, report.path).values()) == {0}


@pytest.mark.slow  # two failed and resumed builds
@pytest.mark.parametrize("step", ["setup", "visit_occurrence"])
def test_every_kind_of_step_is_undone_and_resumed(built, counted, tmp_path, step):
    """The first step (it creates the tables) and one handing Python state on (the rollup) and filling
    a CDM table: each fails after its work was done, is undone and resumed to the same CDM."""
    lake_dir, registry, reference, _ = built
    runs, fail = counted
    warehouse = tmp_path / "warehouse"
    fail[0] = step
    with pytest.raises(Injected):
        cdm_build(lake_dir, registry, warehouse)
    fail[0] = None
    runs.clear()
    report = cdm_build(lake_dir, registry, warehouse)
    assert report.resumed_from == step and set(runs) == set(NAMES[NAMES.index(step) :])
    assert set(differing_rows(reference.path, report.path).values()) == {0}
    assert (report.reconciliation, report.unmapped_rows) == (
        reference.reconciliation,
        reference.unmapped_rows,
    )


def test_the_assets_metadata_names_the_step_the_build_resumed_at():
    table = cdm_assets._built_tables()[0]
    resumed = build.CdmBuildReport(Path("build.duckdb"), {}, None, 0, 0, resumed_from="cost")
    assert cdm_assets._table_metadata(table, resumed, {}, {})["cdm_build_resumed_from"] == "cost"
    full = build.CdmBuildReport(Path("build.duckdb"), {}, None, 0, 0)
    assert cdm_assets._table_metadata(table, full, {}, {})["cdm_build_resumed_from"] == ""


def test_the_undo_puts_back_what_a_step_replaced_and_drops_what_it_made():
    """As the incremental build's narrowing does before PERSON: views replaced, registered data
    replaced by a view, tables made; all of it undone when the step fails."""
    con = duckdb.connect()
    con.register("crosswalk_all", pa.table({"person_id": [1, 2]}))
    con.execute("CREATE TEMP TABLE kept AS SELECT 1 AS x")
    con.execute("CREATE TEMP VIEW stg_person AS SELECT * FROM kept")
    con.execute("CREATE SCHEMA cdm")
    con.execute("CREATE TABLE cdm.person (person_id BIGINT)")
    step = Step("person", (), (), ("crosswalk", "cdm.person"))
    guard = resume.StepGuard(con, step, fix_up=False, view_sql={})
    with pytest.raises(Injected), guard:
        con.execute("CREATE TEMP TABLE narrowed AS SELECT 2 AS x")
        con.execute("CREATE OR REPLACE TEMP VIEW stg_person AS SELECT * FROM narrowed")
        con.execute("CREATE OR REPLACE TEMP VIEW crosswalk_all AS SELECT 3 AS person_id")
        con.execute("CREATE TEMP VIEW crosswalk AS SELECT * FROM crosswalk_all")
        con.execute("INSERT INTO cdm.person VALUES (1)")
        con.execute("CREATE TABLE cdm.made (x INTEGER)")
        raise Injected("in the step")
    assert guard.undone
    assert con.execute("SELECT x FROM stg_person").fetchall() == [(1,)]
    views = {
        name
        for (name,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"
        ).fetchall()
    }
    assert views == {"stg_person"}  # the registration is made again by the rerun
    tables = {n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"kept", "person"}
    assert con.execute("SELECT count(*) FROM cdm.person").fetchone() == (0,)


def test_a_step_that_replaced_an_earlier_table_cannot_be_resumed():
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE mapped_event AS SELECT 1 AS x")
    guard = resume.StepGuard(con, Step("x", (), (), ()), fix_up=False, view_sql={})
    with pytest.raises(Injected), guard:
        con.execute("CREATE OR REPLACE TEMP TABLE mapped_event AS SELECT 2 AS x")
        raise Injected("in the step")
    assert not guard.undone  # its rows before the step are gone: the next build starts over
