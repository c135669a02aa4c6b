"""DocumentReferences as FHIR servers and EHR exports send them, traced to staging/note and CDM NOTE:
several attachments (PDF beside text, the note as text and as HTML, the text only behind a url), a
charset other than UTF-8, docStatus, authors that are no practitioner, empty attachments. Hand-written
resources; the de-identified text is checked for the identifiers each note carried."""

from __future__ import annotations

import base64

import duckdb
import pytest

from rwe_assets.lib.cdm.build import build_cdm
from rwe_assets.lib.linkage.crosswalk import build_crosswalk, register_staged_persons
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.staging.test_fhir_r4 import (
    NPI_REF,
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

ORG_AUTHOR = {"reference": "Organization/org1", "display": "Good Hope Clinic"}


def attachment(content_type: str | None, data: bytes | None = None, url: str | None = None) -> dict:
    """One content[] entry: inline base64 data, a url, both or neither."""
    found = {"contentType": content_type} if content_type else {}
    if data is not None:
        found["data"] = base64.b64encode(data).decode()
    if url:
        found["url"] = url
    return {"attachment": found}


def replaces(did: str) -> dict:
    return {"code": "replaces", "target": {"reference": f"DocumentReference/{did}"}}


HTML_NOTE = (
    "<html><head><title>Note of Ann34 Lee12</title><style>p {color: red}</style><script>var mrn = 'x';</script></head><body>"
    "<p>Seen by Dr.&nbsp;Jane Q. Smith</p><p>Plan: rest &amp; fluids &lt;3 days&gt;.<br/>"
    "Call daughter J&#111;anna at 555-201-9876 &#x2014; Ann34 agrees.</p></body></html>"
)
LATIN1_NOTE = "Caf\xe9 au lait spots; na\xefve to therapy; Ann34 states \xab fine \xbb. Dr.\xa0Ruth Ames."
CP1252_NOTE = b"She said \x93no more pills\x94 \x96 dose 5\x80 co-pay."

DOCUMENTS = (
    # 1: a PDF first, the same note as text/plain second: the text is staged
    document(
        "n1", content=[attachment("application/pdf", b"%PDF-1.4"), attachment("text/plain", b"Plain note.")]
    ),
    # 2: the text/plain only behind a url, the HTML inline: the HTML, as text
    document(
        "n2",
        content=[
            attachment("text/plain", url="https://ehr.example.org/Binary/n2"),
            attachment("text/html; charset=utf-8", HTML_NOTE.encode()),
        ],
    ),
    # 3, 4: not UTF-8, as the charset says
    document("n3", content=[attachment("text/plain; charset=ISO-8859-1", LATIN1_NOTE.encode("latin-1"))]),
    document("n4", content=[attachment('text/plain; charset="windows-1252"', CP1252_NOTE)]),
    # 5: a charset this profile does not read
    document("n5", content=[attachment("text/plain; charset=utf-16", "Hello".encode("utf-16"))]),
    # 6: withdrawn by its docStatus (status stays current)
    document("n6", "Wrong patient.", status="current", docStatus="entered-in-error"),
    # 7: preliminary: written text, staged
    document("n7", "Draft impression.", docStatus="preliminary"),
    # 8: an empty attachment; 9: white space only; 10: RTF only
    document("n8", content=[{"attachment": {}}]),
    document("n9", content=[attachment("text/plain", b"  \r\n\t ")]),
    document("n10", content=[attachment("text/rtf", rb"{\rtf1\ansi Note\par}")]),
    # 11: the organization named first among the authors; the practitioner is the provider
    document("n11", "Authored.", author=[ORG_AUTHOR, {"reference": NPI_REF}]),
    # 12: only an organization authored it: no provider
    document("n12", "Org only.", author=[ORG_AUTHOR]),
    # 13-14: a corrected note replaces the first: one note, not two; 15: an addendum to n1, kept
    document("n13", "Left knee pain.", status="superseded"),
    document("n14", "Right knee pain.", relatesTo=[replaces("n13")]),
    document(
        "n15",
        "Addendum: x-ray normal.",
        relatesTo=[{"code": "appends", "target": {"reference": "DocumentReference/n1"}}],
    ),
    # 16-17: a replacement entered in error replaces nothing
    document("n16", "Wrong chart.", docStatus="entered-in-error", relatesTo=[replaces("n17")]),
    document("n17", "Stays."),
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("notes_as_sent")
    files = {
        "Patient.000.ndjson": ndjson(patient("p1")),
        "Encounter.000.ndjson": ndjson(encounter("e1")),
        "DocumentReference.000.ndjson": ndjson(*DOCUMENTS),
    }
    lake_dir, report = stage(tmp_path, fhir_registry(), files)
    return tmp_path, lake_dir, report


def notes(lake) -> dict[str, dict]:
    return {row["record_key"]: row for row in staged(lake[1], "note")}


def test_the_text_attachment_is_chosen_among_several(lake):
    found = notes(lake)
    assert found["n1"]["note_text"] == "Plain note."
    # the HTML is read as a reader sees it: no tags, head, script or style; references decoded; the names a
    # non-breaking space or a character reference hid are redacted
    assert found["n2"]["note_text"] == (
        "Seen by Dr. [NAME] [NAME] [NAME]\nPlan: rest & fluids <3 days>.\n"
        "Call daughter [NAME] at [REDACTED] \u2014 [REDACTED] agrees."
    )


def test_text_is_read_in_its_declared_charset(lake):
    found = notes(lake)
    # the no-break space (byte A0) between title and name is a space, so the name is found
    assert found["n3"]["note_text"] == (
        "Caf\xe9 au lait spots; na\xefve to therapy; [REDACTED] states \xab fine \xbb. Dr. [NAME] [NAME]."
    )
    assert found["n4"]["note_text"] == CP1252_NOTE.decode("cp1252")
    assert "\u201cno more pills\u201d \u2013 dose 5\u20ac" in found["n4"]["note_text"]


def test_notes_the_source_withdrew_or_cannot_give_as_text_are_counted_not_staged(lake):
    assert set(notes(lake)) == {"n1", "n2", "n3", "n4", "n7", "n11", "n12", "n14", "n15", "n17"}
    assert [q for q in quarantined(lake[1]) if q[0] == "note"] == [
        ("note", "documentreference", 5, "UNSUPPORTED_CHARSET", "content.attachment.contentType"),
        ("note", "documentreference", 8, "MISSING_TEXT", "content.attachment.data"),
        ("note", "documentreference", 9, "EMPTY_TEXT", "content.attachment.data"),
        ("note", "documentreference", 10, "UNSUPPORTED_CONTENT_TYPE", "content.attachment.contentType"),
    ]
    assert retired(lake[1]) == [
        ("note", "documentreference", 6, "ENTERED_IN_ERROR", "docStatus"),
        ("note", "documentreference", 13, "REPLACED", "id"),
        ("note", "documentreference", 16, "ENTERED_IN_ERROR", "docStatus"),
    ]
    assert_reconciles(lake[2])


def test_only_a_practitioner_author_is_the_provider(lake):
    found = notes(lake)
    assert found["n11"]["provider_key"] == "9999912345"
    assert found["n12"]["provider_key"] is None


def test_the_cdm_note_rows_carry_the_staged_text_and_no_identifier(lake):
    tmp_path, lake_dir, _ = lake
    con = staging_connection()
    register_staged_persons(con, lake_dir)
    build_crosswalk(con, lake_dir, "test-key")
    report = build_cdm(lake_dir, REPO_DIR / "vocab", tmp_path / "warehouse")
    with duckdb.connect(str(report.path), read_only=True) as db:
        rows = db.execute(
            "SELECT note_title, note_text, note_source_value, note_class_concept_id, provider_id IS NULL"
            " FROM cdm.note ORDER BY note_text"
        ).fetchall()
    assert len(rows) == 10
    texts = "\n".join(r[1] for r in rows)
    for identifier in ("Ann34", "Lee12", "Jane", "Smith", "Joanna", "555-201-9876", "&nbsp;", "<p>"):
        assert identifier not in texts
    assert {r[0] for r in rows} == {"History and physical note"}
    assert {r[2] for r in rows} == {"34117-2"}
