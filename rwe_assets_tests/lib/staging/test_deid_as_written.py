"""Identifiers in the forms EHR notes write them, found by the recognizers alone (no structured value of
the person): EHR signature lines, labelled record numbers, addresses over several lines, PO boxes,
ages over 89 before a sex word. Each was kept before the recognizer change it tests."""

from __future__ import annotations

import pytest

from rwe_assets.lib.staging.deid import NAME, REDACTED, PersonIdentifiers, person_matcher

MATCHER = person_matcher(PersonIdentifiers())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Electronically Signed: SMITH, JANE Q MD 3/4/2021",
            f"Electronically Signed: {NAME} {NAME} {NAME} MD {REDACTED}",
        ),
        ("Electronically signed by SMITH, JANE on", f"Electronically signed by {NAME} {NAME} on"),
        ("signed by DR. JANE SMITH", f"signed by DR. {NAME} {NAME}"),
        ("DR. JANE SMITH", f"DR. {NAME} {NAME}"),
        ("Med Rec #: A1234", f"Med Rec #: {REDACTED}"),
        ("Acct#: 4455", f"Acct#: {REDACTED}"),
        ("Lives at 12 Elm St\nApt 4B\nBoston, MA 02110", f"Lives at {REDACTED}\n{REDACTED}, MA {REDACTED}"),
        ("Address: 12 Elm Street,\nBoston", f"Address: {REDACTED},\nBoston"),
        ("1600 Pennsylvania Ave NW, Washington", f"{REDACTED}, Washington"),
        ("PO Box 123, Springfield", f"{REDACTED}, Springfield"),
        ("mail to P.O. Box 77", f"mail to {REDACTED}"),
        ("92 female with CHF", f"{REDACTED} female with CHF"),
    ],
)
def test_identifiers_as_ehr_notes_write_them(text, expected):
    assert MATCHER.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Read by Laura Fischer, MD, radiology",  # the credential after the comma is no name
        "Temp 98 F, recheck in 2 weeks",
        "signed by JONES, MD",
    ],
)
def test_what_is_not_an_identifier_stays(text):
    kept = MATCHER.redact(text)
    for word in ("MD", "98 F", "2 weeks"):
        if word in text:
            assert word in kept
