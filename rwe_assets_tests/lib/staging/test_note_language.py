"""A note's language as the source states it: the DocumentReference attachment's language (of the
attachment staged), else the resource's, staged as sent; in the CDM the vocabulary's language concept,
0 when the source states none or the vocabulary has no concept for it (then reported as unmapped).
Hand-written resources and language concepts (the bundled vocabulary holds none)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    document,
    encounter,
    fhir_registry,
    ndjson,
    patient,
    stage,
    staged,
)
from rwe_assets_tests.lib.staging.test_notes_as_sent import attachment

ENGLISH, SPANISH, FRENCH_ANSWER = 4180186, 2000900001, 2000900002
# concept_id, name, domain, vocabulary, class, standard, code (test rows in Athena's layout)
LANGUAGE_CONCEPTS = (
    (ENGLISH, "English language", "Language", "SNOMED", "Qualifier Value", "", "TEST-EN"),
    (SPANISH, "Spanish language", "Language", "SNOMED", "Qualifier Value", "", "TEST-ES"),
    # a concept of that name outside the Language domain is no language concept
    (FRENCH_ANSWER, "French language", "Meas Value", "LOINC", "Answer", "S", "TEST-FR"),
)


def text(body: str, language: str, content_type: str = "text/plain") -> dict:
    """A content[] entry whose attachment states its language."""
    entry = attachment(content_type, body.encode())
    entry["attachment"]["language"] = language
    return entry


DOCUMENTS = (
    document("l1", content=[text("Note one.", "en")]),
    document("l2", "Note two.", language="en-US"),
    # the attachment's language wins over the resource's
    document("l3", content=[text("Nota tres.", "es")], language="en"),
    document("l4", "No language stated."),
    document("l5", "Unknown tag.", language="xx-YY"),
    document("l6", "A language the vocabulary lacks.", language="fr-CA"),
    # the language of the attachment staged (the text), not of the PDF beside it
    document("l7", content=[text("%PDF-1.4", "en", "application/pdf"), text("Nota siete.", "ES-mx")]),
)


def vocabulary_with_languages(folder):
    shutil.copytree(REPO_DIR / "vocab", folder)
    with (folder / "CONCEPT.csv").open("a", encoding="utf-8") as concepts:
        for row in LANGUAGE_CONCEPTS:
            concepts.write("\t".join(map(str, row)) + "\t19700101\t20991231\t\n")
    return folder


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("note_language")
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "DocumentReference.000.ndjson": ndjson(*DOCUMENTS),
    }
    lake_dir, _ = stage(tmp_path, fhir_registry(), files)
    return tmp_path, lake_dir


def test_the_language_is_staged_as_sent(lake):
    languages = {row["record_key"]: row["language"] for row in staged(lake[1], "note")}
    assert languages == {
        "l1": "en",
        "l2": "en-US",
        "l3": "es",
        "l4": None,
        "l5": "xx-YY",
        "l6": "fr-CA",
        "l7": "ES-mx",
    }


def test_the_cdm_language_is_the_stated_one_or_0_and_unmapped_tags_are_reported(lake):
    tmp_path, lake_dir = lake
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, "test-key")
    vocab = vocabulary_with_languages(tmp_path / "vocab")
    report = build_cdm(lake_dir, vocab, tmp_path / "warehouse")
    with duckdb.connect(str(report.path), read_only=True) as db:
        by_text = dict(db.execute("SELECT note_text, language_concept_id FROM cdm.note").fetchall())
        unmapped = db.execute(
            "SELECT code, vocabulary_id, cdm_table, rows, persons FROM results.unmapped_codes"
            " WHERE code_kind = 'language' ORDER BY code"
        ).fetchall()
    assert by_text == {
        "Note one.": ENGLISH,
        "Note two.": ENGLISH,
        "Nota tres.": SPANISH,
        "Nota siete.": SPANISH,
        "No language stated.": 0,
        "Unknown tag.": 0,
        "A language the vocabulary lacks.": 0,
    }
    assert unmapped == [("fr-CA", None, "note", 1, 1), ("xx-YY", None, "note", 1, 1)]
