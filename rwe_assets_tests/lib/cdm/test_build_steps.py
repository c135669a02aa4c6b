"""The CDM build as named steps (lib/cdm/steps.py): the table checked against the SQL, each step timed
and logged, a failing step named in its error, the Dagster lineage derived from the table; and the one
SQL loader (lib/cdm/sql.py)."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.defs.cdm import assets as cdm_assets_module
from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.cdm import build, sql, steps
from rwe_assets.lib.cdm.steps import STEPS, Call, Sql, Step
from rwe_assets.lib.linkage.crosswalk import build_crosswalk
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging, staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.cdm.test_build import BATCH
from rwe_assets_tests.lib.staging.test_build import synthea_registry


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """test_build's small batch staged and linked, and its CDM built once, logging its steps."""
    tmp_path, registry = tmp_path_factory.mktemp("steps"), synthea_registry()
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    land(landing, "site", "b1", BATCH)
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    build_staging(lake_dir, registry)
    con = staging_connection()
    pii = lake.open_table(lake.table_path(lake_dir, "staging", "person_pii")).to_pyarrow_dataset()
    con.register("person_pii", pii)
    build_crosswalk(con, lake_dir, "test-key")
    lines: list[str] = []
    report = build.build_cdm(
        lake_dir, REPO_DIR / "vocab", tmp_path / "warehouse", registry=registry, log=lines.append
    )
    return lake_dir, registry, report, lines


# --- the step table ------------------------------------------------------------------------------------


def test_the_step_table_matches_its_sql():
    assert steps.check_steps() == []


def test_a_step_reading_what_a_later_step_writes_is_reported():
    person = next(n for n, s in enumerate(STEPS) if s.name == "person")
    swapped = (*STEPS[:person], STEPS[person + 1], STEPS[person], *STEPS[person + 2 :])
    assert "step visit_occurrence: reads crosswalk, which no earlier step writes" in steps.check_steps(
        swapped
    )


def test_a_table_the_sql_uses_but_the_step_does_not_declare_is_reported():
    changed = tuple(
        Step(s.name, s.actions, tuple(r for r in s.reads if r != "visit_link"), s.writes)
        if s.name == "note"
        else s
        for s in STEPS
    )
    assert steps.check_steps(changed) == ["step note: note.sql uses visit_link, not declared"]


def test_a_fix_up_that_would_close_a_circle_is_left_out_of_the_lineage_and_named():
    table = (
        Step("x", (Call("x"),), ("stg_a",), ("cdm.x",)),
        Step("y", (Call("y"),), ("cdm.x",), ("cdm.y",)),
        Step("fix_x", (Call("fix"),), ("cdm.y",), ("cdm.x",)),  # changes x after y read it
        Step("fix_y", (Call("fix"),), ("stg_b",), ("cdm.y",)),  # no circle: kept
    )
    assert steps.asset_inputs("cdm.x", table) == ({"stg_a"}, {"fix_x"})
    assert steps.asset_inputs("cdm.y", table) == ({"cdm.x", "stg_b"}, set())


def test_dagster_lineage_comes_from_the_step_table():
    unused = {"rwe": dg.ResourceDefinition.none_resource()}
    graph = dg.Definitions(assets=cdm_assets_module.cdm_assets, resources=unused).resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key.split("/"))).parent_keys}

    # drug exposures are ended at death after both were written: death feeds drug_exposure
    assert {"cdm/death", "staging/event", "cdm/visit_detail", "vocab/concept"} <= parents("cdm/drug_exposure")
    assert parents("cdm/condition_era") == {"cdm/condition_occurrence"}
    assert "cdm/observation_period" not in parents("cdm/person")  # the removal is a fix-up: no circle
    assert parents("results/linkage_metrics") == {"linkage/metrics"}
    order = cdm_assets_module._yield_order()
    assert order.index("cdm.death") < order.index("cdm.drug_exposure") < order.index("cdm.drug_era")


# --- running the steps ---------------------------------------------------------------------------------


def test_every_step_is_timed_and_logged_in_order(built):
    _, _, report, lines = built
    assert list(report.step_seconds) == [s.name for s in STEPS]
    assert len(lines) == len(STEPS) and lines[-1].startswith(f"CDM build step {len(STEPS)}/{len(STEPS)} ")
    with duckdb.connect(str(report.path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 3


def test_a_failing_step_is_named_in_its_error_and_the_last_build_is_kept(built, monkeypatch):
    lake_dir, registry, first, _ = built
    before = first.path.read_bytes()
    real = build.run_sql

    def failing(con, name):
        if name == "drug_end_at_death":
            raise duckdb.Error("a broken statement")
        real(con, name)

    monkeypatch.setattr(build, "run_sql", failing)
    lines: list[str] = []
    with pytest.raises(duckdb.Error) as raised:
        build.build_cdm(
            lake_dir,
            REPO_DIR / "vocab",
            first.path.parent,
            registry=registry,
            reuse_unchanged=False,
            log=lines.append,
        )
    number = [s.name for s in STEPS].index("drug_end_at_death") + 1
    assert f"in CDM build step {number}/{len(STEPS)} 'drug_end_at_death'" in "".join(raised.value.__notes__)
    assert "'drug_end_at_death' failed after" in lines[-1]
    assert first.path.read_bytes() == before


# --- the SQL loader ------------------------------------------------------------------------------------


@pytest.fixture
def probe(monkeypatch, tmp_path):
    def write(text: str) -> str:
        (tmp_path / "probe.sql").write_text(text)
        monkeypatch.setattr(sql, "SQL_DIR", tmp_path)
        sql.sql_text.cache_clear()
        sql.sections.cache_clear()
        return "probe"

    yield write
    sql.sql_text.cache_clear()
    sql.sections.cache_clear()


def test_placeholders_fill_names_quoted_fragments_as_is_and_sections_inlined(probe):
    name = probe(
        "-- rule: {schema} in a comment stays\n"
        "-- name: people\nSELECT person_id FROM {schema}.person WHERE regexp_full_match(z, '[0-9]{5}')\n"
        "-- name: count\nSELECT count(*) FROM {people} AS p LIMIT {n}\n"
    )
    rendered = sql.render(name, "count", {"schema": 'my "cdm"', "n": sql.Fragment("5")})
    assert rendered == (
        'SELECT count(*) FROM (\nSELECT person_id FROM "my ""cdm""".person '
        "WHERE regexp_full_match(z, '[0-9]{5}')\n) AS p LIMIT 5"
    )
    whole = sql.render(name, fill={"schema": "s", "people": sql.Fragment("p"), "n": sql.Fragment("1")})
    assert whole.startswith("-- rule: {schema} in a comment stays")  # comments are never filled


def test_an_unknown_placeholder_or_a_missing_value_is_an_error_naming_the_file(probe):
    name = probe("SELECT * FROM {table} WHERE x = $male AND y = $unknown_value;\n")
    with pytest.raises(ConfigError, match=r"probe.sql: expected a known placeholder, found \{table\}"):
        sql.render(name)
    statement = sql.render(name, fill={"table": "t"})
    with pytest.raises(ConfigError, match="unknown_value"):
        sql.execute(duckdb.connect(), statement)


def test_run_binds_the_concept_parameters_each_statement_uses(probe):
    name = probe(
        "-- two statements\nCREATE TABLE {t} AS SELECT $male AS sex;\n-- only a comment;\n"
        "INSERT INTO {t} VALUES ($female);\n"
    )
    con = duckdb.connect()
    sql.run(con, name, fill={"t": "sexes"})
    assert sorted(r[0] for r in con.execute("SELECT sex FROM sexes").fetchall()) == sorted([c.MALE, c.FEMALE])


def test_every_cdm_sql_file_the_build_runs_renders_without_fill():
    """The files run by build.run_sql have no {placeholder} left (values are $parameters)."""
    names = {a.name for s in STEPS for a in s.actions if isinstance(a, Sql)}
    assert names and all(sql.statements(sql.render(name)) for name in sorted(names))
