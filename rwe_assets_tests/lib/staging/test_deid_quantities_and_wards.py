"""Clinical text the placed-address recognizer took for streets (review finding of 2026-12-07): a number
before a count or dose noun ('to 2 Tablets Dr', 'on 3 Occasions Dr Patel'), a ward before a CT ('to 4
North Ct scan'). Each stays as written (a clinician's name still becomes [NAME]); a street placed by a
word, and a ward-like street with its city or ZIP, are still redacted."""

from __future__ import annotations

import pytest

from rwe_assets.lib.staging.deid import NAME, REDACTED, PersonIdentifiers, person_matcher

MATCHER = person_matcher(PersonIdentifiers())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Increased to 2 Tablets Dr advised.", "Increased to 2 Tablets Dr advised."),
        ("Returned to 4 North Ct scan ordered.", "Returned to 4 North Ct scan ordered."),
        ("Patient seen on 3 Occasions Dr Patel agrees.", f"Patient seen on 3 Occasions Dr {NAME} agrees."),
        ("Given 2 TABLETS DR PATEL", f"Given 2 TABLETS DR {NAME}"),
        ("Sent to 5 West Ct imaging", "Sent to 5 West Ct imaging"),
        ("Transferred to 2 Radiology Ct head today", "Transferred to 2 Radiology Ct head today"),
    ],
)
def test_quantities_wards_and_ct_stay(text, expected):
    assert MATCHER.redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lives at 12 Elm St with her son", f"lives at {REDACTED} with her son"),
        ("Moved to 4 Oak Ct last spring", f"Moved to {REDACTED} last spring"),
        ("Lives at 4 North Ct, Springfield", f"Lives at {REDACTED}, Springfield"),
        ("Lives at 4 North Ct 01101", f"Lives at {REDACTED} {REDACTED}"),
        ("Transferred to 4 North St ward", f"Transferred to {REDACTED} ward"),
        ("Seen on 2 Occasions at 9 Oak Dr", f"Seen on 2 Occasions at {REDACTED}"),
    ],
)
def test_placed_streets_are_still_redacted(text, expected):
    assert MATCHER.redact(text) == expected
