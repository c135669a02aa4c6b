"""Review leftovers of note de-identification (session of 2026-12-07): a street address in prose that
is not the patient's own, with an abbreviated suffix and a lower-case word after it, was kept; a name
of someone else with accented letters was cut at the first one ('[NAME]ée'). Recognizers alone (no
structured value of the person), as a relative's or a clinician's name reaches them."""

from __future__ import annotations

import pytest

from rwe_assets.lib.staging.deid import NAME, REDACTED, PersonIdentifiers, person_matcher

MATCHER = person_matcher(PersonIdentifiers())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lives at 12 Elm St with her son", f"Lives at {REDACTED} with her son"),
        ("Moved to 4 Oak Ct last spring", f"Moved to {REDACTED} last spring"),
        (
            "Daughter lives near 30 W Birch Ln and visits daily",
            f"Daughter lives near {REDACTED} and visits daily",
        ),
        ("Address: 9 Côté Ave since May", f"Address: {REDACTED} since May"),
    ],
)
def test_a_placed_street_with_an_abbreviated_suffix_is_redacted_whatever_follows(text, expected):
    assert MATCHER.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Post op day 2 Ortho Ct reviewed",
        "BP 120/80, 2 Tablets Dr ordered",
        "Troponin 3 Anterior ST depression",
    ],
)
def test_an_abbreviation_after_a_number_without_a_place_word_stays(text):
    assert MATCHER.redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Discussed with daughter Renée, HTN stable", f"Discussed with daughter {NAME}, HTN stable"),
        ("Seen by Dr. Müller today", f"Seen by Dr. {NAME} today"),
        ("Signed by Élodie Marchand, RN", f"Signed by {NAME} {NAME}, RN"),
        ("husband MÜLLER, RENÉE", f"husband {NAME} {NAME}"),
        ("Name: Ørsted, Søren", f"Name: {NAME} {NAME}"),
        ("daughter Zoë at bedside", f"daughter {NAME} at bedside"),
        # decomposed: 'e' and a combining acute accent (U+0301), as some systems write it
        ("Dr. Rene\u0301e Dubois called", f"Dr. {NAME} {NAME} called"),
        ("Liane379 Renée seen", f"{NAME} Renée seen"),  # no context: only the Synthea-shaped word
    ],
)
def test_a_name_with_accented_letters_is_redacted_whole(text, expected):
    assert MATCHER.redact(text) == expected
