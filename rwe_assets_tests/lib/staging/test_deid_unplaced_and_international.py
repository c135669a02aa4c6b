"""Identifiers the recognizers missed with no structured value to match (audit of 2026-12-07): a
street with an abbreviated suffix and no word placing it (`12 Elm St with his wife`), a unit written
before its street, phone numbers in international and labelled local forms, a URL without scheme,
an SSN with wide spaces, `March the 3rd, 1961`. Each is redacted; the clinical text around the same
shapes (counts, wards, CT, scores, reflexes, pH) stays as written."""

from __future__ import annotations

import pytest

from rwe_assets.lib.staging.deid import REDACTED, PersonIdentifiers, person_matcher

MATCHER = person_matcher(PersonIdentifiers())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a street with an abbreviated suffix, then prose: no 'at'/'on' before it
        ("12 Elm St with his wife", f"{REDACTED} with his wife"),
        ("Home: 12 Elm St with his wife", f"Home: {REDACTED} with his wife"),
        ("Lives alone, 12 Elm St since 2010", f"Lives alone, {REDACTED} since 2010"),
        ("34 Oak Ln with her son", f"{REDACTED} with her son"),
        ("7 Maple Ave and his daughter visits", f"{REDACTED} and his daughter visits"),
        ("12 Elm Rd in Boston", f"{REDACTED} in Boston"),
        ("12 Elm Dr with his wife", f"{REDACTED} with his wife"),
        ("12 Elm Ct with his wife", f"{REDACTED} with his wife"),
        # the unit before its street
        ("Apt 4B, 12 Elm St", REDACTED),
        ("Unit 4B, 12 Elm Street", REDACTED),
        ("Apt. 3, 45 Mill Road with her son", f"{REDACTED} with her son"),
        ("Apartment 12, 45 Mill Road", REDACTED),
        ("Rm 3, 45 Mill Road", REDACTED),
    ],
)
def test_streets_without_a_placing_word(text, expected):
    assert MATCHER.redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +44 20 7946 0958 today", f"Call {REDACTED} today"),
        ("Tel: +44 (0)20 7946 0958", f"Tel: {REDACTED}"),
        ("Daughter in Paris +33 1 42 68 53 00.", f"Daughter in Paris {REDACTED}."),
        ("+61 2 9876 5432", REDACTED),
        ("+91 98765 43210", REDACTED),
        ("+49 30 12345678", REDACTED),
        ("Tel 0044 20 7946 0958", f"Tel {REDACTED}"),
        ("+1.555.123.4567", REDACTED),
        ("tel. 555 1234", f"tel. {REDACTED}"),
        ("mobile: 07700 900123", f"mobile: {REDACTED}"),
        ("Phone 020 7946 0958 evenings", f"Phone {REDACTED} evenings"),
    ],
)
def test_phone_numbers_in_international_and_labelled_forms(text, expected):
    assert MATCHER.redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see portal.example.org/patient/8823", f"see {REDACTED}"),
        ("mychart.example.org/patient?id=99812 for results", f"{REDACTED} for results"),
        ("results on ehr.nhs.uk/p/77", f"results on {REDACTED}"),
        ("SSN 123  45  6789", f"SSN {REDACTED}"),
        ("born March the 3rd, 1961", f"born {REDACTED}"),
    ],
)
def test_urls_without_scheme_wide_ssns_and_written_dates(text, expected):
    assert MATCHER.redact(text) == expected


KEPT = (
    "Post op day 2 Ortho Ct with contrast today",
    "Day 3 Head Ct and MRI reviewed",
    "Given 2 Tablets Dr with food",
    "Returned to 4 North Ct with nurse",
    "2+ pitting edema, reflexes +2 and symmetric",
    "+1 pedal pulses, +2 radial",
    "Hb change +1.2 1.5 1.8 2.0 over four days",
    "Seen in ca. 2 weeks, us. 3 visits",
    "pH 7.35 7.40 7.45 over three draws",
    "Call back in 2 weeks",
    "Glucose 120 mg/dL, e.g./i.e. noted, q.i.d./prn",
    "Mobitz type 2 Av block",
)


@pytest.mark.parametrize("text", KEPT)
def test_clinical_text_of_the_same_shapes_stays(text):
    assert MATCHER.redact(text) == text
