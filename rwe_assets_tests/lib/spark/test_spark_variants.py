"""The Spark variants of the build's Python steps (lib/sql/spark: observation_period and the three
eras) against lib/cdm/eras.py on DuckDB: the same rows from hand-written edge cases (gaps of 30/31 and
32/33 days, ties on a start date, an end before its start, a death cutting a span, a claims-only event of
an enrolled person, a drug without an ingredient, a dose rounded to 6 places), the same counts of what is
left out, and the values the DuckDB build passes bound in the variants. The bundled sample has no
enrollment: the observation-period rule for enrolled persons is shown here (and at 2,000 persons in
bench/spark_cdm.py)."""

from __future__ import annotations

import datetime as dt
import inspect
from types import SimpleNamespace

import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.lib.cdm import build as cdm_build
from rwe_assets.lib.cdm import eras
from rwe_assets.lib.cdm.steps import STEPS
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.spark import build as spark_build

BUILDERS = {
    "observation_period": "build_observation_period_with_enrollment",
    "condition_era": "build_condition_era",
    "drug_era": "build_drug_era",
    "dose_era": "build_dose_era",
}
EHR, CLAIM = 32817, c.CLAIM
INGREDIENT, DRUG, COMBINATION, NO_INGREDIENT, SECOND_INGREDIENT = 1001, 2001, 2002, 3001, 1002
MG = 8576


def test_every_python_step_with_a_variant_runs_on_spark():
    with_variant = {s.name for s in STEPS if spark_build.on_spark(s) and s.name in BUILDERS}
    assert with_variant == set(BUILDERS) == set(spark_build.CALL_VALUES)
    assert "visit_occurrence" in spark_build.steps_on_spark()  # its rollup: SPARK_CALLS


@pytest.mark.parametrize("call", sorted(BUILDERS))
def test_a_variant_binds_what_the_duckdb_build_passes(call, monkeypatch):
    """lib/cdm/build.py's call of the eras.py builder, its defaults applied, gives each value the Spark
    variant binds; the schema and enrollment table are the ones the variant names."""
    builder = getattr(eras, BUILDERS[call])
    seen = {}

    def capture(*args, **kwargs):
        bound = inspect.signature(builder).bind(*args, **kwargs)
        bound.apply_defaults()
        seen.update(bound.arguments)

    monkeypatch.setattr(eras, BUILDERS[call], capture)
    cdm_build._CALLS[call](SimpleNamespace(con=None))
    assert seen.pop("con") is None and seen.pop("schema") == "cdm"
    if call == "observation_period":
        assert seen.pop("enrollment_table") == "payer_plan_period"
    seen = {k: list(v) if isinstance(v, tuple) else v for k, v in seen.items()}
    assert seen == spark_build.CALL_VALUES[call]


def _cdm(con) -> None:
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    con.execute("CREATE SCHEMA IF NOT EXISTS results")
    con.executemany(
        "INSERT INTO cdm.concept (concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, "
        "standard_concept, concept_code, valid_start_date, valid_end_date) "
        "VALUES (?, 'x', 'Drug', 'RxNorm', ?, ?, ?, DATE '2000-01-01', DATE '2099-12-31')",
        [
            (INGREDIENT, "Ingredient", "S", "a"),
            (SECOND_INGREDIENT, "Ingredient", "S", "b"),
            (DRUG, "Clinical Drug", "S", "c"),
            (COMBINATION, "Clinical Drug", "S", "d"),
            (NO_INGREDIENT, "Clinical Drug", None, "e"),
        ],
    )
    con.executemany(
        "INSERT INTO cdm.concept_ancestor VALUES (?, ?, 0, 1)",
        [(INGREDIENT, DRUG), (INGREDIENT, COMBINATION), (SECOND_INGREDIENT, COMBINATION)],
    )
    con.executemany(
        "INSERT INTO cdm.drug_strength (drug_concept_id, ingredient_concept_id, amount_value, "
        "amount_unit_concept_id, valid_start_date, valid_end_date) "
        "VALUES (?, ?, ?, ?, DATE '2000-01-01', DATE '2099-12-31')",
        [(DRUG, INGREDIENT, 500, MG), (INGREDIENT, INGREDIENT, 1, MG), (COMBINATION, INGREDIENT, 100, MG)]
        + [(COMBINATION, SECOND_INGREDIENT, None, None)],
    )


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _events(con) -> None:
    conditions = [  # person, concept, start, end, type
        (1, 100, "2020-01-01", "2020-01-10", EHR),
        (1, 100, "2020-02-09", None, EHR),  # 30 days after the end: merges; ends the next day
        (1, 100, "2020-03-12", "2020-03-12", EHR),  # 31 days after 2020-02-10: a new era
        (1, 100, "2021-01-01", "2021-01-05", EHR),
        (1, 100, "2021-01-01", None, EHR),  # a tie on the start date
        (1, 0, "2019-06-01", None, EHR),  # unmapped: no era, but observed
        (1, 200, "2022-06-01", None, CLAIM),  # a claims event of an enrolled person outside enrollment
        (2, 100, "2020-05-10", "2020-05-01", EHR),  # ends before it starts
        (2, 300, "2020-07-01", None, EHR),  # after death: does not extend the period
        (3, 100, "2020-01-01", "2020-01-31", EHR),
    ]
    con.executemany(
        "INSERT INTO cdm.condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_end_date, condition_type_concept_id) VALUES (?, ?, ?, ?, ?, ?)",
        [(i, p, k, _d(s), e and _d(e), t) for i, (p, k, s, e, t) in enumerate(conditions, 1)],
    )
    drugs = [  # person, drug, start, end, days_supply, quantity
        (1, DRUG, "2020-01-01", "2020-01-31", 30, 60),
        (1, INGREDIENT, "2020-01-20", "2020-02-10", 21, 21),  # overlaps: gap days count the union once
        (1, DRUG, "2020-03-12", "2020-04-10", 30, 60),  # 31 days after: a new era
        (1, INGREDIENT, "2020-05-01", "2020-05-03", 3, 10),  # 10 / 3: 3.333333 a day
        (2, NO_INGREDIENT, "2020-01-01", "2020-01-10", 10, 10),  # no ingredient: left out, counted
        (3, COMBINATION, "2020-01-01", "2020-01-30", 30, 30),  # two ingredients, one without an amount
        (3, DRUG, "2020-02-01", "2020-02-10", None, None),  # no days_supply: no dose
    ]
    con.executemany(
        "INSERT INTO cdm.drug_exposure (drug_exposure_id, person_id, drug_concept_id, "
        "drug_exposure_start_date, drug_exposure_end_date, days_supply, quantity, drug_type_concept_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(i, p, k, _d(s), _d(e), n, q, EHR) for i, (p, k, s, e, n, q) in enumerate(drugs, 1)],
    )
    con.execute(
        "INSERT INTO cdm.death (person_id, death_date, death_type_concept_id) VALUES (2, ?, ?)",
        [_d("2020-06-01"), EHR],
    )
    enrollment = [  # person, start, end
        (1, "2020-01-01", "2020-06-30"),
        (1, "2020-08-02", "2020-12-31"),  # 33 days after: a gap the EHR span bridges
        (4, "2020-01-01", "2020-03-31"),
        (4, "2020-05-03", "2020-12-31"),  # 33 days after, but ...
        (4, "2020-04-01", "2020-04-01"),  # ... a one-day span between joins them (gaps of 0 and 32)
    ]
    con.executemany(
        "INSERT INTO cdm.payer_plan_period (payer_plan_period_id, person_id, payer_plan_period_start_date, "
        "payer_plan_period_end_date) VALUES (?, ?, ?, ?)",
        [(i, p, _d(s), _d(e)) for i, (p, s, e) in enumerate(enrollment, 1)],
    )


def _rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM cdm.{table} ORDER BY ALL").fetchall()


def test_the_variants_build_what_duckdb_builds(spark, tmp_path):
    con = duckdb.connect()
    _cdm(con)
    _events(con)
    lines: list[str] = []
    state = SimpleNamespace(con=con, lake_dir=tmp_path / "lake", log=lines.append)
    run = spark_build.SparkBuild(state, spark, tmp_path / "scratch")
    on_spark = {}
    for step in (s for s in STEPS if s.name in BUILDERS):
        run.run(step, run_on_duckdb=None)  # None: a step falling back to DuckDB fails here
        on_spark[step.name] = sorted(
            tuple(r.values()) for r in run._tables.get(f"cdm.{step.name}").toArrow().to_pylist()
        )
    assert run.engines == dict.fromkeys(BUILDERS, "spark")

    outside = cdm_build._CALLS["observation_period"](SimpleNamespace(con=con))
    periods = eras.build_observation_period_with_enrollment
    excluded = {
        "observation_period": periods(con, "cdm", **spark_build.CALL_VALUES["observation_period"]).excluded,
        "drug_era": eras.build_drug_era(con, "cdm").excluded,
    }
    eras.build_condition_era(con, "cdm")
    eras.build_dose_era(con, "cdm")
    assert outside is None  # the build's call returns nothing: the count is logged
    for table in BUILDERS:
        assert on_spark[table] == _rows(con, table), table
    assert excluded == {"observation_period": 1, "drug_era": 1}
    for name, count in excluded.items():
        assert f"{name} on Spark: {count} {spark_build.VARIANT_COUNTS[name]}" in lines
    # the rule's edges did occur: a 31-day split; person 1's EHR span bridging a 33-day enrollment gap,
    # their claims event after it not; person 4's spans joined across 0 and 32 days; a death cap
    assert len(_rows(con, "condition_era")) == 7
    period = {r[1]: (r[2], r[3]) for r in _rows(con, "observation_period")}
    assert period[1] == (_d("2019-06-01"), _d("2021-01-05"))
    assert period[4] == (_d("2020-01-01"), _d("2020-12-31")) and period[2][1] == _d("2020-06-01")
