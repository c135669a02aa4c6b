"""Clinical words the recognizers of commit f86c569 took for addresses and names (review finding): a
test or an abbreviation after a number read as a street suffix, a next line read as a unit, a
diagnosis after a relative's name read as a surname, an order after 'signed:' read as a signer. Each
must stay as written; the addresses and signers those recognizers were made for are still redacted."""

from __future__ import annotations

import pytest

from rwe_assets.lib.staging.deid import NAME, REDACTED, PersonIdentifiers, person_matcher

MATCHER = person_matcher(PersonIdentifiers())

KEPT = (
    "Troponin 3 Anterior ST depression",
    "Hip 2 Views CT pending",
    "Post op day 2 Ortho Ct reviewed",
    "BP 120/80, 2 Tablets Dr ordered",
    "Room air sat 98%",
    "HTN and DM well controlled",
    "SOB improved",
    "COPD, CHF and ED visit reviewed",
    "Orders signed: Lisinopril 10 mg daily",
)


@pytest.mark.parametrize("text", KEPT)
def test_clinical_words_stay(text):
    assert MATCHER.redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lives at 12 Elm St\nRoom air sat 98%", f"Lives at {REDACTED}\nRoom air sat 98%"),
        (
            "Discussed with son John, HTN and DM well controlled",
            f"Discussed with son {NAME}, HTN and DM well controlled",
        ),
        ("Pt seen with husband Tom, SOB improved", f"Pt seen with husband {NAME}, SOB improved"),
        (
            "Plan reviewed with wife Mary, COPD, CHF and ED visit",
            f"Plan reviewed with wife {NAME}, COPD, CHF and ED visit",
        ),
        ("Lives at 12 Elm St", f"Lives at {REDACTED}"),
        ("Lives at 12 Elm St\nApt 4B", f"Lives at {REDACTED}"),
        ("12 ELM ST", REDACTED),
        ("Seen at 12 Oak Ave., Boston", f"Seen at {REDACTED}, Boston"),
        ("4 Main ST 02139", f"{REDACTED} {REDACTED}"),
        ("husband SMITH, JOHN", f"husband {NAME} {NAME}"),
        ("Electronically Signed: SMITH, JANE Q MD", f"Electronically Signed: {NAME} {NAME} {NAME} MD"),
        ("Signed by: Jane Smith", f"Signed by: {NAME} {NAME}"),
    ],
)
def test_addresses_and_signers_are_still_redacted(text, expected):
    assert MATCHER.redact(text) == expected
