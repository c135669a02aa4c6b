"""The de-identified extract's rules as data (which tables are emptied, which columns cleared, kept only
when shared, or left as codes; which results may leave) and the per-person date shift. The extract
(``extract``) applies them; docs/governance.md lists each with its reason."""

from __future__ import annotations

import hashlib
import hmac

SHIFT_DAYS = 180  # offsets are -180..-1 and 1..180 days
MAX_AGE = 89
SHIFT_CONTEXT = b"rwe_assets de-identified extract: date shift v1"
# Three-digit ZIP areas with 20,000 people or fewer (HHS de-identification guidance, 2000 census).
RESTRICTED_ZIP3 = frozenset(
    [
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    ]
)
EMPTIED = {"note": "free text", "note_nlp": "free text derived from notes"}
CLEARED: dict[str, dict[str, str]] = {
    "person": {
        "person_source_value": "source patient id",
        "month_of_birth": "date element other than year",
        "day_of_birth": "date element other than year",
        "birth_datetime": "date element other than year",
    },
    "location": {
        "address_1": "street address",
        "address_2": "street address",
        "city": "geographic subdivision smaller than a state",
        "county": "geographic subdivision smaller than a state",
        "location_source_value": "source text of city, ZIP and county",
        "latitude": "geocode",
        "longitude": "geocode",
    },
    "provider": {
        "provider_name": "name",
        "npi": "identifier",
        "dea": "identifier",
        "provider_source_value": "source identifier",
        "year_of_birth": "with gender and site, singles out a clinician",
    },
    "care_site": {"care_site_name": "facility name", "care_site_source_value": "source identifier"},
    "payer_plan_period": {
        "sponsor_source_value": "employer identifier",
        "family_source_value": "household identifier",
    },
    "specimen": {"specimen_source_id": "sample or accession number"},
    "variant_occurrence": {"variant_source_value": "built from the sample id"},
    "device_exposure": {"unique_device_id": "device identifier", "production_id": "device serial number"},
    "drug_exposure": {"lot_number": "product serial", "sig": "free text", "stop_reason": "free text"},
    "condition_occurrence": {"stop_reason": "free text"},
}
RARE_TEXT = {
    "payer_plan_period": ("payer_source_value", "plan_source_value"),
    "observation": ("value_as_string", "value_source_value"),
}
# Source values kept as they are: codes, units, categories, numbers (one of a vocabulary or a short list).
CODE_SOURCE_VALUES = frozenset(
    (table, f"{column}_source_value")
    for table, columns in {
        "person": ("gender", "race", "ethnicity"),
        "visit_occurrence": ("visit", "admitted_from", "discharged_to"),
        "visit_detail": ("visit_detail", "admitted_from", "discharged_to"),
        "condition_occurrence": ("condition", "condition_status"),
        "drug_exposure": ("drug", "route", "dose_unit"),
        "procedure_occurrence": ("procedure", "modifier"),
        "device_exposure": ("device", "unit"),
        "measurement": ("measurement", "unit", "value"),
        "observation": ("observation", "unit", "qualifier"),
        "death": ("cause",),
        "specimen": ("specimen", "unit", "anatomic_site", "disease_status"),
        "location": ("country",),
        "care_site": ("place_of_service",),
        "provider": ("specialty", "gender"),
        "payer_plan_period": ("stop_reason",),
        "cost": ("revenue_code", "drg"),
        "episode": ("episode",),
    }.items()
    for column in columns
)
# Dates that are not a person's: the dataset's own, the vocabulary's, a cohort definition's.
UNSHIFTED = frozenset({"cdm_source", "metadata", "cohort_definition"})
PERSON_KEY = {"cohort": "subject_id"}  # every other person-level table: person_id
COPIED_RESULTS = ("achilles_analysis", "achilles_results", "incidence_rate")
# Achilles strata that describe a person's age, birth, dates, place or source text: not copied.
QUASI_IDENTIFYING_STRATA = (
    "age",
    "age decile",
    "age_decile",
    "year_of_birth",
    "calendar month",
    "calendar year",
    "3-digit zip",
    "source_value",
)


def shift_key(linkage_key: str) -> bytes:
    """A key of its own for date shifts, derived from the linkage key (tokens never reveal it)."""
    return hmac.new(linkage_key.encode(), SHIFT_CONTEXT, hashlib.sha256).digest()


def shift_days(key: bytes, person_id: int) -> int:
    """The person's offset in days: -SHIFT_DAYS..-1 or 1..SHIFT_DAYS, never 0, the same every run."""
    digest = hmac.new(key, str(int(person_id)).encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big") % (2 * SHIFT_DAYS)  # bias ~2**-55: negligible
    return n - SHIFT_DAYS if n < SHIFT_DAYS else n - SHIFT_DAYS + 1
