"""Cohorts compiled from Circe JSON and the YAML form, each construct on a hand-built population."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
import yaml

from rwe_assets.lib.analytics.cohorts import (
    UnsupportedCohortConstruct,
    cohort_files,
    compile_cohort,
    load_cohort,
    write_cohort,
    yaml_to_circe,
)
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.genomics.cdm import gcdm_ddl
from rwe_assets.lib.vocabulary import load_vocabulary
from rwe_assets.settings import REPO_DIR

BUNDLED = REPO_DIR / "rwe_assets" / "cohorts"
T2D = 201826
OSTEO, OSTEO_CHILD = 80502, 40480160  # a parent and its descendant in the bundled concept_ancestor
DRUG, MEAS, OBS, PROC, VISIT = 723042, 765449, 439224, 762506, 9201
D = dt.date.fromisoformat


# ---------------------------------------------------------------- a hand-built CDM


def tiny_cdm(path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    """Empty OMOP v5.4 + G-CDM tables and the bundled vocabulary."""
    con = duckdb.connect(str(path))
    for statement in [*cdm_ddl(), *gcdm_ddl(), "CREATE SCHEMA IF NOT EXISTS results"]:
        con.execute(statement)
    load_vocabulary(con, REPO_DIR / "vocab")
    return con


_IDS: dict[str, int] = {}


def add(con: duckdb.DuckDBPyConnection, table: str, **values) -> None:
    """Insert one row, filling required columns not given (ids count up, concepts 0, a missing date
    the first date given)."""
    required = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'cdm' "
        "AND table_name = ? AND is_nullable = 'NO' ORDER BY ordinal_position",
        [table],
    ).fetchall()
    first_date = next((v for v in values.values() if isinstance(v, dt.date)), dt.date(2000, 1, 1))
    for name, kind in required:
        if name not in values:
            if name == f"{table}_id":
                _IDS[table] = _IDS.get(table, 0) + 1
                values[name] = _IDS[table]
            else:
                values[name] = first_date if kind == "DATE" else (0 if "INT" in kind else "")
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"INSERT INTO cdm.{table} ({names}) VALUES ({marks})", list(values.values()))


def person(con, pid: int, periods: list[tuple[str, str]], gender: int = 8532, year: int = 1970) -> None:
    add(con, "person", person_id=pid, gender_concept_id=gender, year_of_birth=year)
    for start, end in periods:
        add(
            con,
            "observation_period",
            person_id=pid,
            observation_period_start_date=D(start),
            observation_period_end_date=D(end),
        )


def condition(con, pid: int, concept: int, start: str, end: str | None = None) -> None:
    add(
        con,
        "condition_occurrence",
        person_id=pid,
        condition_concept_id=concept,
        condition_start_date=D(start),
        condition_end_date=D(end) if end else None,
    )


def rows(con, expression: dict) -> list[tuple]:
    return con.sql(
        f"SELECT subject_id, cohort_start_date::VARCHAR, cohort_end_date::VARCHAR FROM ({compile_cohort(expression)}) "
        "ORDER BY 1, 2"
    ).fetchall()


def concept_set(
    set_id: int, *concepts: int, descendants: bool = True, excluded: tuple[int, ...] = ()
) -> dict:
    items = [
        {
            "concept": {"CONCEPT_ID": c},
            "isExcluded": False,
            "includeDescendants": descendants,
            "includeMapped": False,
        }
        for c in concepts
    ] + [
        {
            "concept": {"CONCEPT_ID": c},
            "isExcluded": True,
            "includeDescendants": descendants,
            "includeMapped": False,
        }
        for c in excluded
    ]
    return {"id": set_id, "name": f"set {set_id}", "expression": {"items": items}}


def circe(criteria: list[dict], sets: list[dict], **top) -> dict:
    """A Circe expression with every limit at All, overridden by `top`."""
    expression = {
        "ConceptSets": sets,
        "PrimaryCriteria": {
            "CriteriaList": criteria,
            "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
            "PrimaryCriteriaLimit": {"Type": "All"},
        },
        "QualifiedLimit": {"Type": "All"},
        "ExpressionLimit": {"Type": "All"},
        "InclusionRules": [],
        "EndStrategy": {"DateOffset": {"DateField": "EndDate", "Offset": 0}},
        "CensoringCriteria": [],
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
        "CensorWindow": {},
    }
    expression.update(top)
    return expression


def cond(codeset: int = 0, **attrs) -> dict:
    return {"ConditionOccurrence": {"CodesetId": codeset, "ConditionTypeExclude": False, **attrs}}


@pytest.fixture
def con():
    connection = tiny_cdm()
    yield connection
    connection.close()


# ---------------------------------------------------------------- primary criteria, observation, ends, eras


def test_events_outside_observation_and_several_periods(con):
    person(con, 1, [("2018-01-01", "2018-12-31"), ("2020-01-01", "2020-12-31")])
    condition(con, 1, T2D, "2019-06-01")  # between the two periods: not observed
    condition(con, 1, T2D, "2020-03-01")
    person(con, 2, [("2018-01-01", "2018-12-31")])
    condition(con, 2, T2D, "2021-01-01")  # after the only period
    expression = circe([cond()], [concept_set(0, T2D)], EndStrategy={})  # end of observation
    assert rows(con, expression) == [(1, "2020-03-01", "2020-12-31")]  # the period holding the event


def test_observation_window_prior_and_post_days(con):
    person(con, 1, [("2020-01-01", "2021-12-31")])
    condition(con, 1, T2D, "2020-03-01")  # 60 days of prior observation
    person(con, 2, [("2020-01-01", "2021-12-31")])
    condition(con, 2, T2D, "2021-02-01")  # 397 days
    expression = circe([cond()], [concept_set(0, T2D)])
    expression["PrimaryCriteria"]["ObservationWindow"] = {"PriorDays": 365, "PostDays": 0}
    assert [r[0] for r in rows(con, expression)] == [2]
    expression["PrimaryCriteria"]["ObservationWindow"] = {"PriorDays": 0, "PostDays": 400}
    assert [r[0] for r in rows(con, expression)] == [1]  # person 2 has only 333 days after


def test_date_offset_end_is_capped_by_observation_and_era_pad_merges(con):
    person(con, 1, [("2020-01-01", "2020-12-31")])
    condition(con, 1, T2D, "2020-01-10")  # no end date: ends the next day
    condition(con, 1, T2D, "2020-01-12", "2020-01-15")
    condition(con, 1, T2D, "2020-12-30")
    expression = circe([cond()], [concept_set(0, T2D)])
    assert rows(con, expression) == [
        (1, "2020-01-10", "2020-01-11"),
        (1, "2020-01-12", "2020-01-15"),
        (1, "2020-12-30", "2020-12-31"),
    ]
    expression["CollapseSettings"]["EraPad"] = 1  # 01-12 is within a day of 01-11
    assert rows(con, expression)[0] == (1, "2020-01-10", "2020-01-15")
    expression["EndStrategy"] = {"DateOffset": {"DateField": "StartDate", "Offset": 30}}
    assert rows(con, expression) == [(1, "2020-01-10", "2020-02-11"), (1, "2020-12-30", "2020-12-31")]


def test_primary_limit_first_versus_all_and_criterion_first(con):
    person(con, 1, [("2019-01-01", "2020-12-31")])
    condition(con, 1, T2D, "2019-06-01")
    condition(con, 1, T2D, "2020-06-01")
    expression = circe([cond()], [concept_set(0, T2D)])
    assert len(rows(con, expression)) == 2
    expression["PrimaryCriteria"]["PrimaryCriteriaLimit"] = {"Type": "First"}
    assert rows(con, expression) == [(1, "2019-06-01", "2019-06-02")]
    # First on the criterion: the person's first event ever, even when it is outside observation
    con.execute("UPDATE cdm.observation_period SET observation_period_start_date = DATE '2020-01-01'")
    expression = circe([cond(First=True)], [concept_set(0, T2D)])
    assert rows(con, expression) == []


def test_descendants_and_excluded_concepts(con):
    person(con, 1, [("2020-01-01", "2020-12-31")])
    condition(con, 1, OSTEO_CHILD, "2020-02-01")
    person(con, 2, [("2020-01-01", "2020-12-31")])
    condition(con, 2, OSTEO, "2020-02-01")
    with_desc = circe([cond()], [concept_set(0, OSTEO)])
    assert [r[0] for r in rows(con, with_desc)] == [1, 2]
    without = circe([cond()], [concept_set(0, OSTEO, descendants=False)])
    assert [r[0] for r in rows(con, without)] == [2]
    excluded = circe([cond()], [concept_set(0, OSTEO, excluded=(OSTEO_CHILD,))])
    assert [r[0] for r in rows(con, excluded)] == [2]


def test_each_domain_as_primary_criterion(con):
    person(con, 1, [("2020-01-01", "2020-12-31")])
    add(
        con,
        "drug_exposure",
        person_id=1,
        drug_concept_id=DRUG,
        drug_exposure_start_date=D("2020-02-01"),
        drug_exposure_end_date=D("2020-03-02"),
    )
    add(con, "procedure_occurrence", person_id=1, procedure_concept_id=PROC, procedure_date=D("2020-03-01"))
    add(con, "observation", person_id=1, observation_concept_id=OBS, observation_date=D("2020-04-01"))
    add(
        con,
        "visit_occurrence",
        person_id=1,
        visit_concept_id=VISIT,
        visit_start_date=D("2020-05-01"),
        visit_end_date=D("2020-05-04"),
    )
    sets = [concept_set(n, c) for n, c in enumerate([DRUG, PROC, OBS, VISIT])]
    expected = {
        "DrugExposure": ("2020-02-01", "2020-03-02"),
        "ProcedureOccurrence": ("2020-03-01", "2020-03-02"),
        "Observation": ("2020-04-01", "2020-04-02"),
        "VisitOccurrence": ("2020-05-01", "2020-05-04"),
    }
    for n, (kind, (start, end)) in enumerate(expected.items()):
        assert rows(con, circe([{kind: {"CodesetId": n}}], sets)) == [(1, start, end)], kind


def test_measurement_value_ranges_and_units(con):
    person(con, 1, [("2020-01-01", "2020-12-31")])
    for day, value, unit in (("2020-02-01", 6.0, 8554), ("2020-03-01", 7.0, 8554), ("2020-04-01", 7.5, 9579)):
        add(
            con,
            "measurement",
            person_id=1,
            measurement_concept_id=MEAS,
            measurement_date=D(day),
            value_as_number=value,
            unit_concept_id=unit,
        )
    in_range = {"Measurement": {"CodesetId": 0, "ValueAsNumber": {"Value": 6.5, "Op": "bt", "Extent": 30}}}
    assert [r[1] for r in rows(con, circe([in_range], [concept_set(0, MEAS)]))] == [
        "2020-03-01",
        "2020-04-01",
    ]
    in_range["Measurement"]["Unit"] = [{"CONCEPT_ID": 8554}]
    assert [r[1] for r in rows(con, circe([in_range], [concept_set(0, MEAS)]))] == ["2020-03-01"]
    below = {"Measurement": {"CodesetId": 0, "ValueAsNumber": {"Value": 6.5, "Op": "lt"}}}
    assert [r[1] for r in rows(con, circe([below], [concept_set(0, MEAS)]))] == ["2020-02-01"]


# ---------------------------------------------------------------- inclusion rules, limits


def _bound(days: int | None, open_side: int) -> dict:
    return {"Coeff": open_side} if days is None else {"Days": abs(days), "Coeff": -1 if days < 0 else 1}


def _rule(criteria: dict, start: int | None, end: int | None, kind: int, count: int, **extra) -> dict:
    return {
        "name": "rule",
        "expression": {
            "Type": "ALL",
            "CriteriaList": [
                {
                    "Criteria": criteria,
                    "StartWindow": {"Start": _bound(start, -1), "End": _bound(end, 1)},
                    "Occurrence": {"Type": kind, "Count": count, "IsDistinct": False},
                    **extra,
                }
            ],
            "DemographicCriteriaList": [],
            "Groups": [],
        },
    }


def _drug_population(con) -> None:
    """Index T2D on 2020-03-01 for persons 1..3, with 0, 1 and 2 drug exposures in the 30 days after."""
    for pid in (1, 2, 3):
        person(con, pid, [("2019-01-01", "2020-12-31")])
        condition(con, pid, T2D, "2020-03-01")
        for k in range(pid - 1):
            add(
                con,
                "drug_exposure",
                person_id=pid,
                drug_concept_id=DRUG,
                drug_exposure_start_date=D("2020-03-05") + dt.timedelta(days=k),
            )
        add(
            con,
            "drug_exposure",
            person_id=pid,
            drug_concept_id=DRUG,
            drug_exposure_start_date=D("2020-06-01"),
        )  # outside the window


def test_inclusion_rule_occurrence_types(con):
    _drug_population(con)
    sets = [concept_set(0, T2D), concept_set(1, DRUG)]
    drug = {"DrugExposure": {"CodesetId": 1}}
    for kind, count, expected in ((0, 1, [2]), (1, 1, [1, 2]), (2, 2, [3]), (0, 0, [1])):
        expression = circe([cond()], sets, InclusionRules=[_rule(drug, 0, 30, kind, count)])
        assert [r[0] for r in rows(con, expression)] == expected, (kind, count)


def test_inclusion_rule_window_and_observation_period(con):
    person(con, 1, [("2018-01-01", "2018-12-31"), ("2020-01-01", "2020-12-31")])
    condition(con, 1, OSTEO, "2018-06-01")  # earlier period
    condition(con, 1, T2D, "2020-03-01")
    sets = [concept_set(0, T2D), concept_set(1, OSTEO)]
    prior = _rule(cond(1), -1000, -1, 2, 1)  # at least one osteoporosis in the 1000 days before index
    assert rows(con, circe([cond()], sets, InclusionRules=[prior])) == []  # not in the index's period
    prior["expression"]["CriteriaList"][0]["IgnoreObservationPeriod"] = True
    assert [r[0] for r in rows(con, circe([cond()], sets, InclusionRules=[prior]))] == [1]
    too_recent = _rule(cond(1), -365, -1, 2, 1, IgnoreObservationPeriod=True)
    assert rows(con, circe([cond()], sets, InclusionRules=[too_recent])) == []


def test_additional_criteria_groups_and_limits(con):
    _drug_population(con)
    condition(con, 3, T2D, "2020-09-01")  # a second index for person 3
    sets = [concept_set(0, T2D), concept_set(1, DRUG)]
    any_drug_after = {
        "Type": "ANY",
        "CriteriaList": [
            _rule({"DrugExposure": {"CodesetId": 1}}, 0, None, 2, 1)["expression"]["CriteriaList"][0]
        ],
    }
    expression = circe([cond()], sets, AdditionalCriteria=any_drug_after, QualifiedLimit={"Type": "All"})
    assert [r[0] for r in rows(con, expression)] == [1, 2, 3]  # person 3's Sept index has no later drug
    assert len([r for r in rows(con, expression) if r[0] == 3]) == 1
    expression = circe([cond()], sets, ExpressionLimit={"Type": "First"})
    assert [r[1] for r in rows(con, expression) if r[0] == 3] == ["2020-03-01"]
    at_most_zero = {"Type": "AT_MOST", "Count": 0, "CriteriaList": any_drug_after["CriteriaList"]}
    assert [
        r[0]
        for r in rows(
            con, circe([cond()], sets, AdditionalCriteria=at_most_zero, QualifiedLimit={"Type": "All"})
        )
    ] == [3]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "change, construct",
    [
        (lambda e: e.update(CensoringCriteria=[{"DeviceExposure": {"CodesetId": 0}}]), "DeviceExposure"),
        (
            lambda e: e.update(EndStrategy={"CustomEra": {"DrugCodesetId": 0, "DaysSupplyOverride": 30}}),
            "DaysSupplyOverride",
        ),
        (
            lambda e: e["PrimaryCriteria"]["CriteriaList"].append({"DeviceExposure": {"CodesetId": 0}}),
            "DeviceExposure",
        ),
        (
            lambda e: e["PrimaryCriteria"]["CriteriaList"][0]["ConditionOccurrence"].update(
                Age={"Value": 18, "Op": "gt"}
            ),
            "Age",
        ),
        (
            lambda e: e.update(
                InclusionRules=[
                    {"name": "r", "expression": {"Type": "ALL", "DemographicCriteriaList": [{"Gender": []}]}}
                ]
            ),
            "DemographicCriteriaList",
        ),
    ],
)
def test_unsupported_construct_is_refused_by_name(con, change, construct):
    expression = circe([cond()], [concept_set(0, T2D)])
    change(expression)
    with pytest.raises(UnsupportedCohortConstruct) as err:
        compile_cohort(expression)
    assert err.value.construct == construct


def test_every_shared_atlas_definition_is_inside_the_subset():
    paths = sorted((REPO_DIR / "rwe_assets_tests" / "data" / "atlas_cohorts").glob("*.json"))
    assert len(paths) == 7
    for path in paths:
        compile_cohort(json.loads(path.read_text()))  # all seven are inside the subset


# ---------------------------------------------------------------- YAML form, genomics, writing


def _carrier_population(con) -> None:
    """Persons 1 and 2 carry BRCA1 c.5266dupC (one annotated, one by coordinates only); 3 does not."""
    add(con, "target_gene", target_gene_id=1, hgnc_symbol="BRCA1")
    for pid, hgvs, pos in (
        (1, "NM_007294.4:c.5266dupC", 43057062),
        (2, None, 43057062),
        (3, "NM_007294.4:c.68_69del", 43124027),
    ):
        person(con, pid, [("2015-01-01", "2022-12-31")])
        add(con, "specimen", specimen_id=pid, person_id=pid, specimen_date=D("2016-01-01"))
        add(
            con,
            "variant_occurrence",
            person_id=pid,
            specimen_id=pid,
            target_gene1_id=1 if hgvs else None,
            hgvs_c=hgvs,
            reference_genome="GRCh38",
            chromosome="chr17",
            position=pos,
            reference_allele="T",
            alternate_allele="TG" if pos == 43057062 else "TAC",
        )


def test_bundled_brca1_yaml_cohort_finds_carriers(con):
    _carrier_population(con)
    definition = load_cohort(BUNDLED / "brca1_c5266dupc_carriers.yaml")
    assert [r[0] for r in rows(con, definition.expression)] == [1, 2]


def test_bundled_folder_lists_each_definition_once():
    names = [p.name for p in cohort_files(BUNDLED)]
    assert names == [
        "brca1_c5266dupc_carriers.yaml",
        "brca_pathogenic_carriers_9002.yaml",
        "breast_cancer_788.yaml",
        "copd_9004.yaml",
        "ever_smokers_9005.yaml",
        "smoking_status_recorded_9006.yaml",
        "type2_diabetes_503.yaml",
        "women_genetic_test_9003.yaml",
    ]
    ids = sorted(load_cohort(BUNDLED / n).cohort_definition_id for n in names)
    assert ids == [503, 788, 9001, 9002, 9003, 9004, 9005, 9006]


def test_yaml_form_matches_its_circe_translation(con):
    _drug_population(con)
    doc = {
        "id": 1,
        "name": "T2D with a drug within 30 days",
        "concept_sets": {"t2d": {"include": [T2D]}, "drug": {"include": [DRUG]}},
        "entry": [{"condition": "t2d"}],
        "entry_limit": "first",
        "inclusion": [
            {
                "name": "two drugs",
                "criteria": [
                    {"drug": "drug", "start_window": [0, 30], "occurrences": {"type": "at_least", "count": 2}}
                ],
            }
        ],
        "end": {"from": "start", "offset_days": 10},
    }
    assert rows(con, yaml_to_circe(doc, "test")) == [(3, "2020-03-01", "2020-03-11")]
    with pytest.raises(UnsupportedCohortConstruct):
        yaml_to_circe({**doc, "censor": [{"drug": "drug"}]}, "test")


def test_write_cohort_replaces_its_rows_and_definition(con):
    _drug_population(con)
    definition = load_cohort(BUNDLED / "type2_diabetes_503.yaml")
    first = write_cohort(con, definition)
    again = write_cohort(con, definition)
    assert (first.rows, first.persons) == (again.rows, again.persons) == (3, 3)
    assert con.execute("SELECT count(*) FROM cdm.cohort").fetchone() == (3,)
    name, syntax = con.execute(
        "SELECT cohort_definition_name, cohort_definition_syntax FROM cdm.cohort_definition"
    ).fetchone()
    assert name == "[P][R] Type 2 diabetes mellitus" and json.loads(syntax)["PrimaryCriteria"]


def test_a_failed_write_leaves_the_previous_rows(con):
    _drug_population(con)
    definition = load_cohort(BUNDLED / "type2_diabetes_503.yaml")
    write_cohort(con, definition)
    con.execute("ALTER TABLE cdm.cohort_definition RENAME TO cohort_definition_moved")
    with pytest.raises(duckdb.CatalogException):
        write_cohort(con, definition)  # fails after its DELETE and INSERT into cdm.cohort
    assert con.execute("SELECT count(*) FROM cdm.cohort").fetchone() == (3,)


def test_open_window_bounds_stop_at_the_observation_period_and_distinct_counts(con):
    person(con, 1, [("2019-01-01", "2020-12-31")])
    condition(con, 1, T2D, "2020-03-01")
    for day, concept in (("2019-02-01", OSTEO), ("2019-03-01", OSTEO), ("2019-04-01", OSTEO_CHILD)):
        condition(con, 1, concept, day)
    sets = [concept_set(0, T2D), concept_set(1, OSTEO)]
    two_distinct = _rule(cond(1), None, -1, 2, 2)
    assert [r[0] for r in rows(con, circe([cond()], sets, InclusionRules=[two_distinct]))] == [1]  # 3 events
    two_distinct["expression"]["CriteriaList"][0]["Occurrence"]["IsDistinct"] = True  # 2 concepts
    assert [r[0] for r in rows(con, circe([cond()], sets, InclusionRules=[two_distinct]))] == [1]
    two_distinct["expression"]["CriteriaList"][0]["Occurrence"]["Count"] = 3
    assert rows(con, circe([cond()], sets, InclusionRules=[two_distinct])) == []
    two_distinct["expression"]["CriteriaList"][0]["Occurrence"]["CountColumn"] = "START_DATE"  # 3 dates
    assert [r[0] for r in rows(con, circe([cond()], sets, InclusionRules=[two_distinct]))] == [1]
    # Circe: an open Start with Coeff 1 while the observation period applies means "from the period's end"
    after = _rule(cond(1), None, None, 2, 1)
    after["expression"]["CriteriaList"][0]["StartWindow"]["Start"] = {"Coeff": 1}
    assert rows(con, circe([cond()], sets, InclusionRules=[after])) == []
    after["expression"]["CriteriaList"][0]["IgnoreObservationPeriod"] = True  # open on both sides
    assert [r[0] for r in rows(con, circe([cond()], sets, InclusionRules=[after]))] == [1]


def test_the_documented_yaml_example_runs(con):
    text = (REPO_DIR / "docs" / "analytics.md").read_text(encoding="utf-8")
    block = text[text.index("```yaml\nid: 9100") + len("```yaml\n") :]
    doc = yaml.safe_load(block[: block.index("```")])
    _drug_population(con)
    assert rows(con, yaml_to_circe(doc, "docs/analytics.md")) == []  # no 365 days of prior observation
