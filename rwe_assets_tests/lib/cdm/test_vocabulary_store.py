"""The vocabulary is loaded once per content digest into a store the build copies from, and the build
reports what a changed vocabulary did to the mapping (lib/vocabulary.py, lib/cdm/vocabulary_change.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.publish import publish
from rwe_assets.lib.vocabulary import ensure_vocabulary_store, load_vocabulary
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging import test_lifecycle as lifecycle
from rwe_assets_tests.lib.staging.test_build import synthea_registry

VOCAB = REPO_DIR / "vocab"
DIABETES_SNOMED = (
    "44054006"  # 201826: lifecycle.SYNTHEA_V1's mapped condition (its hypertension code is unmapped)
)


def without_concept_code(target: Path, code: str) -> Path:
    """A copy of the bundled vocabulary whose CONCEPT file lacks the concept with `code`."""
    shutil.copytree(VOCAB, target)
    lines = (VOCAB / "CONCEPT.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.split("\t")[6] != code]
    assert len(kept) == len(lines) - 1
    (target / "CONCEPT.csv").write_text("".join(kept), encoding="utf-8")
    return target


def test_the_store_is_loaded_once_per_content_and_copies_what_the_files_hold(tmp_path):
    first = ensure_vocabulary_store(VOCAB, tmp_path / "stores")
    again = ensure_vocabulary_store(VOCAB, tmp_path / "stores")
    assert first.created and not again.created and again.path == first.path
    changed = ensure_vocabulary_store(
        without_concept_code(tmp_path / "b", DIABETES_SNOMED), tmp_path / "stores"
    )
    assert changed.created and changed.digest != first.digest
    assert changed.row_counts["concept"] == first.row_counts["concept"] - 1
    # The store holds what a direct load of the files gives.
    with duckdb.connect() as con, duckdb.connect(str(first.path), read_only=True) as store:
        con.execute("CREATE SCHEMA cdm")
        for statement in store.execute(
            "SELECT sql FROM duckdb_tables() WHERE schema_name = 'cdm'"
        ).fetchall():
            con.execute(statement[0])
        assert load_vocabulary(con, VOCAB) == first.row_counts
    ensure_vocabulary_store(without_concept_code(tmp_path / "c", "59621000"), tmp_path / "stores", keep=2)
    assert not first.path.exists() and changed.path.exists()  # the least recently used store is pruned


def test_a_vocabulary_change_is_reported_against_the_published_cdm(tmp_path):
    cdm = build(tmp_path, synthea_registry(), "site", [lifecycle.SYNTHEA_V1])
    publish(cdm.parent, require_quality=False)
    with duckdb.connect(str(cdm), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results.vocabulary_change").fetchone()[0] == 0  # first build
        mapped = con.execute(
            "SELECT count(*) FROM cdm.condition_occurrence WHERE condition_concept_id <> 0"
        ).fetchone()[0]
    assert mapped > 0
    vocab_b = without_concept_code(tmp_path / "vocab_b", DIABETES_SNOMED)
    build_cdm(tmp_path / "lake", vocab_b, cdm.parent, registry=synthea_registry())
    with duckdb.connect(str(cdm), read_only=True) as con:
        change = con.execute(
            "SELECT cdm_table, source_value, change, previous_concepts, current_concepts, previous_rows, "
            "current_rows FROM results.vocabulary_change"
        ).fetchall()
    # Without concept 201826 the diabetes code's rows stay conditions (the source's own domain) but
    # unmapped; the unmapped hypertension code is unchanged and not reported.
    assert change == [
        ("condition_occurrence", DIABETES_SNOMED, "newly_unmapped", [201826], [0], mapped, mapped)
    ]


def test_the_demo_vocabulary_on_data_it_does_not_map_is_warned_about(tmp_path):
    """The sample's condition concept missing: its rows unmapped, above the warning share."""
    lake_dir = tmp_path / "lake"
    build(tmp_path, synthea_registry(), "site", [lifecycle.SYNTHEA_V1])
    clean = build_cdm(lake_dir, VOCAB, tmp_path / "w1", registry=synthea_registry())
    vocab_b = without_concept_code(tmp_path / "vb", DIABETES_SNOMED)
    report = build_cdm(lake_dir, vocab_b, tmp_path / "w2", registry=synthea_registry())
    assert clean.vocabulary_warning is None
    assert "unmapped" in report.vocabulary_warning and "RWE_VOCAB_DIR" in report.vocabulary_warning
    with duckdb.connect(str(report.path), read_only=True) as con:
        demo, warning = con.execute("SELECT demo_subset, warning FROM results.vocabulary").fetchone()
    assert demo and warning == report.vocabulary_warning
