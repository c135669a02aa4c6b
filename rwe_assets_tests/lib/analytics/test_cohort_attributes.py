"""Cohort constructs added for the bundled KM analyses: the Gender attribute, the Specimen domain
(`any`: every event of a domain), gene-level variant criteria with a clinical-significance filter,
Observation text values, and the bundled cohorts 9002-9006 that use them."""

from __future__ import annotations

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.analytics.cohorts import UnsupportedCohortConstruct, load_cohort, yaml_to_circe
from rwe_assets_tests.lib.analytics.test_cohorts import (
    BUNDLED,
    T2D,
    D,
    add,
    circe,
    concept_set,
    cond,
    condition,
    person,
    rows,
    tiny_cdm,
)

FEMALE, MALE = 8532, 8507
SMOKING_STATUS = 43054909


@pytest.fixture
def con():
    connection = tiny_cdm()
    yield connection
    connection.close()


def ids(con, expression: dict) -> list[int]:
    return [r[0] for r in rows(con, expression)]


def test_gender_attribute_keeps_only_those_persons(con):
    for pid, gender in ((1, FEMALE), (2, MALE), (3, FEMALE)):
        person(con, pid, [("2020-01-01", "2020-12-31")], gender=gender)
        condition(con, pid, T2D, "2020-03-01")
    sets = [concept_set(0, T2D)]
    assert ids(con, circe([cond()], sets)) == [1, 2, 3]
    assert ids(con, circe([cond(Gender=[{"CONCEPT_ID": FEMALE}])], sets)) == [1, 3]
    assert ids(con, circe([cond(Gender=[{"CONCEPT_ID": MALE}])], sets)) == [2]


def test_specimen_domain_and_any_event_in_yaml(con):
    person(con, 1, [("2020-01-01", "2020-12-31")])
    person(con, 2, [("2020-01-01", "2020-12-31")], gender=MALE)
    person(con, 3, [("2020-01-01", "2020-12-31")])
    for pid, day in ((1, "2020-02-01"), (1, "2020-05-01"), (2, "2020-03-01"), (3, "2021-06-01")):
        add(con, "specimen", person_id=pid, specimen_date=D(day))  # person 3's: outside observation
    doc = {"id": 1, "name": "tested women", "entry": [{"specimen": "any", "gender": [FEMALE], "first": True}]}
    assert rows(con, yaml_to_circe(doc, "t")) == [(1, "2020-02-01", "2020-12-31")]


def test_any_is_not_a_concept_set_name():
    doc = {"id": 1, "name": "x", "concept_sets": {"any": {"include": [T2D]}}, "entry": [{"condition": "any"}]}
    with pytest.raises(ConfigError, match="every event of a domain"):
        yaml_to_circe(doc, "t")


def _variant_population(con) -> None:
    """1: BRCA1 pathogenic; 2: BRCA2 likely pathogenic (ClinVar spelling); 3: BRCA1 benign only;
    4: CFTR pathogenic; 5: an unannotated call at a BRCA1 position; 6: a man, BRCA2 pathogenic."""
    for gene_id, gene in ((1, "BRCA1"), (2, "BRCA2"), (3, "CFTR")):
        add(con, "target_gene", target_gene_id=gene_id, hgnc_symbol=gene)
    calls = {
        1: (1, "Pathogenic"),
        2: (2, "Likely_pathogenic"),
        3: (1, "Benign"),
        4: (3, "Pathogenic"),
        5: (None, None),
        6: (2, "Pathogenic"),
    }
    for pid, (gene_id, significance) in calls.items():
        person(con, pid, [("2015-01-01", "2022-12-31")], gender=MALE if pid == 6 else FEMALE)
        add(con, "specimen", specimen_id=pid, person_id=pid, specimen_date=D("2016-01-01"))
        add(
            con,
            "variant_occurrence",
            variant_occurrence_id=pid,
            person_id=pid,
            specimen_id=pid,
            target_gene1_id=gene_id,
            chromosome="chr17",
            position=43057062,
            reference_allele="T",
            alternate_allele="TG",
        )
        if significance:
            add(con, "variant_annotation", variant_occurrence_id=pid, variant_pathogeny=significance)


def test_gene_level_variant_with_pathogenicity(con):
    _variant_population(con)

    def variant(**attrs) -> list[int]:
        return ids(con, circe([{"VariantOccurrence": attrs}], []))

    assert variant(Gene=["BRCA1", "BRCA2"]) == [1, 2, 3, 6]  # any call on the genes; 5 has no gene
    assert variant(Gene="BRCA1") == [1, 3]
    assert variant(Gene=["BRCA1", "BRCA2"], Pathogenicity=["Pathogenic", "Likely pathogenic"]) == [1, 2, 6]
    assert variant(Gene=["BRCA1", "BRCA2"], Pathogenicity=["pathogenic"]) == [1, 6]  # case-insensitive
    assert variant(
        Gene=["BRCA1", "BRCA2"], Pathogenicity=["Pathogenic"], Gender=[{"CONCEPT_ID": FEMALE}]
    ) == [1]
    with pytest.raises(UnsupportedCohortConstruct, match="without a gene or coordinates"):
        variant(Pathogenicity=["Pathogenic"])


def test_bundled_brca_cohorts_find_carriers_and_tested_women(con):
    _variant_population(con)
    carriers = load_cohort(BUNDLED / "brca_pathogenic_carriers_9002.yaml")
    tested = load_cohort(BUNDLED / "women_genetic_test_9003.yaml")
    assert (carriers.cohort_definition_id, tested.cohort_definition_id) == (9002, 9003)
    assert ids(con, carriers.expression) == [1, 2, 6]
    assert ids(con, tested.expression) == [1, 2, 3, 4, 5]


def _smoking_population(con) -> None:
    """1 every day, 2 former, 3 never, 4 'Current some day smoker', 5 never then a text without
    'smoker', 6 a status with no text; 1 and 3 get COPD (258780)."""
    statuses = {
        1: ["Every day smoker"],
        2: ["Former smoker"],
        3: ["Never smoker"],
        4: ["Current some day smoker"],
        5: ["Never smoker", "100% never"],
        6: [None],
    }
    for pid, texts in statuses.items():
        person(con, pid, [("2010-01-01", "2022-12-31")])
        for n, text in enumerate(texts):
            add(
                con,
                "observation",
                person_id=pid,
                observation_concept_id=SMOKING_STATUS,
                observation_date=D(f"201{1 + n}-01-01"),
                value_as_string=text,
            )
    for pid in (1, 3):
        condition(con, pid, 258780, "2018-01-01")


def test_observation_text_value_operators(con):
    _smoking_population(con)

    def text(op: str, value: str) -> list[int]:
        criterion = {"Observation": {"CodesetId": 0, "ValueAsString": {"Op": op, "Text": value}}}
        return ids(con, circe([criterion], [concept_set(0, SMOKING_STATUS, descendants=False)]))

    assert text("contains", "SMOKER") == [1, 2, 3, 4, 5]  # case-insensitive, as Circe's LIKE on SQL Server
    assert text("startsWith", "never") == [3, 5]
    assert text("endsWith", "day smoker") == [1, 4]
    assert text("!contains", "never") == [1, 2, 4]  # 6: no text, so not "not containing" either
    assert text("contains", "100%") == [5]  # % is a character, not a wildcard
    assert text("contains", "y%") == []  # unescaped, '%y%%' would match "Every day smoker"
    assert text("contains", "n_ver") == []  # _ is a character too
    assert text("!startsWith", "") == []  # NULL text matches neither a test nor its negation
    with pytest.raises(UnsupportedCohortConstruct, match="text operator 'matches'"):
        text("matches", "x")


def test_bundled_smoking_and_copd_cohorts(con):
    _smoking_population(con)
    expected = {
        "ever_smokers_9005.yaml": [1, 2, 4],
        "smoking_status_recorded_9006.yaml": [1, 2, 3, 4, 5, 6],
        "copd_9004.yaml": [1, 3],
    }
    for name, persons in expected.items():
        assert ids(con, load_cohort(BUNDLED / name).expression) == persons, name
