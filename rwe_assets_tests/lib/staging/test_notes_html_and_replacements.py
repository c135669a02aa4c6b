"""Review findings on notes as sent (commit f86c569): HTML cells and character references must not hide
the patient's own name, a bare '<' is text, a replacement that is itself quarantined retires nothing,
and every WHATWG label of windows-1252 is read. Hand-written DocumentReferences, one staging run."""

from __future__ import annotations

import pytest

from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    assert_reconciles,
    document,
    encounter,
    fhir_registry,
    ndjson,
    patient,
    quarantined,
    retired,
    stage,
    staged,
)
from rwe_assets_tests.lib.staging.test_notes_as_sent import attachment, replaces

OWN_NAME = [{"use": "official", "family": "Müller", "given": ["Renée"]}]
PLAIN = "Name Renée Müller\nMrs Müller (Renée) seen today."
# the same words as an EHR's HTML export: cells with no space between them, entities for the accents
HTML = (
    "<table><tr><td>Name</td><td>Ren&eacute;e</td><td>M&uuml;ller</td></tr></table>"
    "<p>Mrs M&#252;ller (Ren&#xe9;e) seen today.</p>"
)
CHARSET_LABELS = ("x-cp1252", "iso-ir-100", "csisolatin1", "cp819", "ibm819", "iso88591", "ISO_8859-1:1987")

DOCUMENTS = (
    document("plain", PLAIN),
    document("html", content=[attachment("text/html; charset=utf-8", HTML.encode())]),
    document(
        "lt",
        content=[
            attachment(
                "text/html", b"<p>Glucose <100 and stable, K 4.1</p><!-- a > b --><p>Plan: recheck</p>"
            )
        ],
    ),
    # originals, each replaced by a version that cannot stage (pdf only, url only, no subject, a charset
    # not read, empty) and so must stay; the last one is replaced by a note that stages
    *(document(f"o{i}", f"Original {i}.") for i in range(1, 7)),
    document("r1", content=[attachment("application/pdf", b"%PDF-1.4")], relatesTo=[replaces("o1")]),
    document(
        "r2",
        content=[attachment("text/plain", url="https://ehr.example.org/Binary/r2")],
        relatesTo=[replaces("o2")],
    ),
    document("r3", "No subject.", subject=None, relatesTo=[replaces("o3")]),
    document(
        "r4",
        content=[attachment("text/plain; charset=utf-16", "x".encode("utf-16"))],
        relatesTo=[replaces("o4")],
    ),
    document("r5", content=[attachment("text/plain", b" \n ")], relatesTo=[replaces("o5")]),
    document("r6", "Corrected.", relatesTo=[replaces("o6")]),
    *(
        document(f"c{i}", content=[attachment(f"text/plain; charset={label}", b"caf\xe9 \x93ok\x94")])
        for i, label in enumerate(CHARSET_LABELS)
    ),
    document("q1", content=[attachment("text/plain; charset='utf-8'", b"quoted")]),
    document("l1", content=[attachment("text/plain; charset=latin-1", b"caf\xe9")]),
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    files = {
        "Patient.000.ndjson": ndjson(patient("p1", name=OWN_NAME)),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "DocumentReference.000.ndjson": ndjson(*DOCUMENTS),
    }
    return stage(tmp_path_factory.mktemp("notes_review"), fhir_registry(), files)


def notes(lake) -> dict[str, str]:
    return {row["record_key"]: row["note_text"] for row in staged(lake[0], "note")}


def words(text: str) -> list[str]:
    return text.split()


def test_html_note_is_redacted_as_the_same_words_in_text_plain(lake):
    found = notes(lake)
    assert words(found["html"]) == words(found["plain"])
    for name in ("Ren", "Müller", "&uuml;", "&eacute;"):
        assert name not in found["html"]
    assert "seen today." in found["html"]


def test_a_bare_less_than_is_text_and_a_comment_is_dropped_whole(lake):
    text = notes(lake)["lt"]
    assert "Glucose <100 and stable, K 4.1" in text
    assert "Plan: recheck" in text
    assert "b" not in words(text) and "-->" not in text


def test_a_quarantined_replacement_retires_nothing(lake):
    found = notes(lake)
    assert {"o1", "o2", "o3", "o4", "o5"} <= set(found)
    assert "o6" not in found and found["r6"] == "Corrected."
    assert [r for r in retired(lake[0]) if r[3] == "REPLACED"] == [
        ("note", "documentreference", 9, "REPLACED", "id")
    ]
    reasons = {q[2]: q[3] for q in quarantined(lake[0]) if q[0] == "note"}
    assert [reasons.get(line) for line in range(10, 15)] == [
        "UNSUPPORTED_CONTENT_TYPE",
        "MISSING_TEXT",
        "MISSING_PERSON",
        "UNSUPPORTED_CHARSET",
        "EMPTY_TEXT",
    ]
    assert_reconciles(lake[1])


def test_every_whatwg_label_of_windows_1252_is_read_and_latin_dash_1_is_not(lake):
    found = notes(lake)
    for i in range(len(CHARSET_LABELS)):
        assert found[f"c{i}"] == "caf\xe9 \u201cok\u201d"
    assert found["q1"] == "quoted"
    assert "l1" not in found
    line = 16 + len(CHARSET_LABELS) + 1
    assert ("note", "documentreference", line, "UNSUPPORTED_CHARSET", "content.attachment.contentType") in (
        quarantined(lake[0])
    )
