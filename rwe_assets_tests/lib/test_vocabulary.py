from __future__ import annotations

import hashlib
import os
import shutil

import duckdb
import pytest

from rwe_assets import constants
from rwe_assets.errors import ConfigError
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.quality import dqd, runner
from rwe_assets.lib.vocabulary import (
    VOCABULARY_TABLES,
    ensure_vocabulary_store,
    load_vocabulary,
    start_from_store,
    vocabulary_digest,
    vocabulary_version,
)
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.cdm.small_cdm import build as small_build
from rwe_assets_tests.lib.staging import test_lifecycle as lifecycle
from rwe_assets_tests.lib.staging.test_build import synthea_registry


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


def test_an_unchanged_download_is_not_read_again_and_a_changed_one_is(tmp_path, monkeypatch):
    folder, known = tmp_path / "vocab", tmp_path / "stores" / "digests.json"
    shutil.copytree(REPO_DIR / "vocab", folder)
    store = ensure_vocabulary_store(folder, tmp_path / "stores")
    assert store.digest == vocabulary_digest(folder)  # remembering changes no digest (nor store name)

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged vocabulary file was read again")

    with monkeypatch.context() as patched:
        patched.setattr(hashlib, "file_digest", no_reading)
        assert vocabulary_digest(folder, known) == store.digest
    concept = folder / "CONCEPT.csv"
    lines = concept.read_text(encoding="utf-8").splitlines(keepends=True)
    concept.write_text("".join(lines[:-1] + [lines[-1].replace("\t", "\tx", 1)]), encoding="utf-8")
    os.utime(concept, ns=(concept.stat().st_atime_ns, concept.stat().st_mtime_ns + 1))
    changed = vocabulary_digest(folder, known)
    assert changed != store.digest and changed == vocabulary_digest(folder)


def test_the_build_starts_from_the_store_and_holds_exactly_its_vocabulary(tmp_path):
    cdm = small_build(tmp_path, synthea_registry(), "site", [lifecycle.SYNTHEA_V1])
    (store,) = (tmp_path / "warehouse" / "vocabulary").glob("*.duckdb")
    with duckdb.connect(str(cdm), read_only=True) as con:
        con.execute(f"ATTACH '{store}' AS store (READ_ONLY)")
        for table in VOCABULARY_TABLES:
            built, stored = (
                con.execute(f"SELECT count(*), bit_xor(hash(t)) FROM {db}cdm.{table} AS t").fetchone()
                for db in ("", "store.")
            )
            assert built == stored, table
        assert con.execute("SELECT count(*) FROM cdm.concept").fetchone()[0] > 1000


def test_the_vocabulary_checks_run_once_per_version_and_give_what_a_full_run_gives(tmp_path, monkeypatch):
    store = ensure_vocabulary_store(REPO_DIR / "vocab", tmp_path / "stores")
    executed: list[int] = []
    real = runner.execute_all

    def counting(con, plans):
        executed.append(sum(isinstance(p, runner.Plan) for p in plans))
        return real(con, plans)

    monkeypatch.setattr(runner, "execute_all", counting)

    def outcomes(name: str, change: str | None = None, forget: bool = False):
        start_from_store(store, tmp_path / name)
        with duckdb.connect(str(tmp_path / name)) as con:
            for sql in [change] * bool(change) + [f"DROP TABLE results.{dqd.VOCABULARY_RESULTS}"] * forget:
                con.execute(sql)
            results = dqd.run_checks(con, results_schema=None, checks=dqd.vocabulary_checks())
        return {r.check_id: (r.status, r.num_violated_rows, r.num_denominator_rows) for r in results}

    reused = outcomes("reused.duckdb")
    assert executed.pop() == 0 and len(reused) > 150  # recorded when the store was written: none ran
    assert outcomes("full.duckdb", forget=True) == reused
    ran = executed.pop()
    assert ran > 100
    # A vocabulary changed after the store was written: the record does not hold, every check runs.
    gone = "DELETE FROM cdm.concept WHERE concept_id = 8507"
    changed = outcomes("changed.duckdb", gone)
    assert executed.pop() == ran and changed != reused
    assert outcomes("changed_full.duckdb", gone, forget=True) == changed
