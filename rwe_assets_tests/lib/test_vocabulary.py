from __future__ import annotations

import duckdb
import pytest

from rwe_assets import constants
from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.vocabulary import load_vocabulary, vocabulary_version
from rwe_assets.settings import REPO_DIR


@pytest.fixture
def con():
    connection = duckdb.connect()
    for statement in cdm_ddl("cdm"):
        connection.execute(statement)
    return connection


def test_the_bundled_vocabulary_loads_and_holds_every_id_the_pipeline_writes(con):
    counts = load_vocabulary(con, REPO_DIR / "vocab")
    assert counts["concept"] > 1000 and counts["concept_relationship"] > 1000
    ids = sorted(set(constants.ALL.values()))
    found = {
        row[0]
        for row in con.execute("SELECT concept_id FROM cdm.concept WHERE concept_id IN ?", [ids]).fetchall()
    }
    assert found == set(ids)
    assert "rwe_assets demo subset" in vocabulary_version(con)


def test_a_directory_in_athena_layout_loads(con, tmp_path):
    (tmp_path / "CONCEPT.csv").write_text(
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\t"
        "valid_start_date\tvalid_end_date\tinvalid_reason\n"
        "201826\tType 2 diabetes mellitus\tCondition\tSNOMED\tClinical Finding\tS\t44054006\t19700101\t20991231\t\n"
        '45576876\tType 2 "diabetes" mellitus\tCondition\tICD10CM\t4-char billing code\t\tE11.9\t20071001\t20991231\t\n'
    )
    (tmp_path / "CONCEPT_RELATIONSHIP.csv").write_text(
        "concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason\n"
        "45576876\t201826\tMaps to\t20071001\t20991231\t\n"
    )
    (tmp_path / "VOCABULARY.csv").write_text(
        "vocabulary_id\tvocabulary_name\tvocabulary_reference\tvocabulary_version\tvocabulary_concept_id\n"
        "None\tOMOP Standardized Vocabularies\tOMOP generated\tv5.0 31-AUG-26\t44819096\n"
    )
    counts = load_vocabulary(con, tmp_path)
    assert (counts["concept"], counts["concept_relationship"], counts["concept_ancestor"]) == (2, 1, 0)
    name, start = con.execute(
        "SELECT concept_name, valid_start_date FROM cdm.concept WHERE concept_id = 45576876"
    ).fetchone()
    assert name == 'Type 2 "diabetes" mellitus' and str(start) == "2007-10-01"
    assert vocabulary_version(con) == "v5.0 31-AUG-26"


def test_missing_or_malformed_vocabulary_is_a_clear_error(con, tmp_path):
    with pytest.raises(ConfigError, match=r"expected CONCEPT\.csv"):
        load_vocabulary(con, tmp_path)
    (tmp_path / "CONCEPT.csv").write_text("concept_id\tconcept_name\n1\tx\n")
    (tmp_path / "CONCEPT_RELATIONSHIP.csv").write_text("concept_id_1\n")
    (tmp_path / "VOCABULARY.csv").write_text("vocabulary_id\n")
    with pytest.raises(ConfigError, match=r"CONCEPT\.csv line 1: expected columns domain_id"):
        load_vocabulary(con, tmp_path)
