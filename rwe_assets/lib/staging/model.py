"""The canonical staging model: source-independent, typed tables every source format maps into.

Every staged table carries the same trailer: where the row came from (source system, raw entity,
file, line, batch) and a stable `record_key`, unique per source system and table. Codes stay as the
source wrote them, with the OMOP vocabulary_id of their code system; mapping to standard concepts
happens where the vocabulary lives (the CDM build), not here.

PII lives in `person_pii` only. Linkage reads it to build tokens; nothing downstream of staging does.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVENANCE = (
    ("source_system", "VARCHAR"),
    ("record_key", "VARCHAR"),
    ("_source_entity", "VARCHAR"),
    ("_source_file", "VARCHAR"),
    ("_line_number", "BIGINT"),
    ("_batch_id", "VARCHAR"),
    ("_ingested_at", "TIMESTAMP WITH TIME ZONE"),
    # The source's own instant of this version (FHIR meta.lastUpdated), NULL where it states none: kept
    # so an incremental run compares a new version with the staged one as a full build would
    # (lib/staging/lifecycle.py).
    ("_version_at", "TIMESTAMP WITH TIME ZONE"),
)
# Provenance a profile's SQL may leave out (NULL then): only some formats state a version instant.
OPTIONAL_PROVENANCE = frozenset({"_version_at"})


@dataclass(frozen=True)
class StagedTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    description: str
    # Columns a profile's SQL may leave out (they are NULL then): added for one source family, so the
    # other profiles need not spell them out.
    optional: frozenset[str] = frozenset()

    @property
    def all_columns(self) -> tuple[tuple[str, str], ...]:
        return PROVENANCE + self.columns

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.all_columns]


PERSON_SOURCE = StagedTable(
    "person_source",
    (
        ("source_person_id", "VARCHAR"),
        ("birth_date", "DATE"),
        ("birth_year", "INTEGER"),
        ("birth_month", "INTEGER"),
        ("birth_date_flag", "VARCHAR"),
        ("record_updated", "TIMESTAMP"),
        ("death_date", "DATE"),
        ("gender_source_value", "VARCHAR"),
        ("race_source_value", "VARCHAR"),
        ("ethnicity_source_value", "VARCHAR"),
        ("city", "VARCHAR"),
        ("state", "VARCHAR"),
        ("zip", "VARCHAR"),
        ("county", "VARCHAR"),
    ),
    "One row per person as a source knows them: demographics OMOP keeps (no names, no street lines). "
    "A birth date that is missing, partial or impossible does not keep a person out: birth_date is the "
    "full date or NULL, birth_year and birth_month what the source's value still tells, "
    "birth_date_flag why the date is not full (BIRTH_DATE_FLAGS). record_updated is when the source "
    "itself last stated the record (FHIR meta.lastUpdated, the DE-SynPUF file year), NULL where it "
    "does not say; the CDM's person rule (lib/sql/cdm/person.sql) orders records by it, never by "
    "ingest time.",
)

# birth_date_flag values: the birth date is not a full valid date, and why (NULL: it is).
BIRTH_DATE_FLAGS = {
    "MISSING_BIRTH_DATE": "no birth date at all: birth_year and birth_month NULL",
    "PARTIAL_BIRTH_DATE": "a year ('1948') or year and month ('1948-08'), as FHIR allows: kept as such",
    "INVALID_BIRTH_DATE": "not a date ('2019-02-30', '30/02/2019'): the year (and month) kept when the "
    "text is shaped YYYY-MM-DD",
}

PERSON_PII = StagedTable(
    "person_pii",
    (
        ("source_person_id", "VARCHAR"),
        ("given_name", "VARCHAR"),
        ("family_name", "VARCHAR"),
        ("maiden_name", "VARCHAR"),
        ("birth_date", "DATE"),
        ("birth_year", "INTEGER"),
        ("birth_month", "INTEGER"),
        ("sex", "VARCHAR"),
        ("ssn", "VARCHAR"),
        ("address_line", "VARCHAR"),
        ("city", "VARCHAR"),
        ("state", "VARCHAR"),
        ("zip", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("email", "VARCHAR"),
        ("drivers_license", "VARCHAR"),
        ("passport", "VARCHAR"),
        ("contact_names", "VARCHAR"),
        ("identifiers", "STRUCT(type VARCHAR, system VARCHAR, value VARCHAR)[]"),
    ),
    "Identifiers of each source person, read only by linkage to build keyed tokens. birth_date is the "
    "full date or NULL (missing, partial or impossible: the record is staged all the same); "
    "birth_year and birth_month keep what a partial date tells. contact_names: the names of the "
    "person's contacts (relatives, guardians: FHIR Patient.contact), space-separated, read only by the "
    "note de-identification (lib/staging/deid.py). identifiers: every identifier the record carries "
    "(national id, MRN, payer member id, driver's licence, passport, ...) as {type, system, value}, the "
    "system being the issuer or assigning authority (NULL: not stated), values as written; the fields "
    "come from the source's registry entry and, for FHIR, Patient.identifier (docs/data-formats.md, "
    '"Identifiers"). ssn, drivers_license and passport repeat the first of their kind for the review '
    "export and the note de-identification. email: the person's email (FHIR telecom system email, a "
    "CSV's optional EMAIL column), read only by linkage.",
    # only FHIR states contacts; a profile without identifier fields leaves identifiers out (NULL); email:
    # FHIR Patient.telecom, an optional EMAIL column of a Synthea CSV (claims and lab files have none)
    optional=frozenset({"contact_names", "identifiers", "email"}),
)

VISIT = StagedTable(
    "visit",
    (
        ("source_person_id", "VARCHAR"),
        ("visit_class", "VARCHAR"),
        ("start_datetime", "TIMESTAMP"),
        ("end_datetime", "TIMESTAMP"),
        ("code", "VARCHAR"),
        ("vocabulary_id", "VARCHAR"),
        ("source_value", "VARCHAR"),
        ("provider_key", "VARCHAR"),
        ("care_site_key", "VARCHAR"),
        ("claim_type", "VARCHAR"),
    ),
    "One row per source encounter; visit_class is normalized (inpatient, emergency, outpatient, ...); "
    "claim_type is set when the encounter is a claim.",
    optional=frozenset({"claim_type"}),
)

EVENT = StagedTable(
    "event",
    (
        ("event_kind", "VARCHAR"),
        ("source_person_id", "VARCHAR"),
        ("visit_key", "VARCHAR"),
        ("start_datetime", "TIMESTAMP"),
        ("end_datetime", "TIMESTAMP"),
        ("code", "VARCHAR"),
        ("vocabulary_id", "VARCHAR"),
        ("code_description", "VARCHAR"),
        ("value_as_number", "DOUBLE"),
        ("value_as_string", "VARCHAR"),
        ("unit_source_value", "VARCHAR"),
        ("quantity", "DOUBLE"),
        ("days_supply", "INTEGER"),
        ("provider_key", "VARCHAR"),
        ("claim_type", "VARCHAR"),
        ("condition_status", "VARCHAR"),
        ("refills", "INTEGER"),
        ("value_code", "VARCHAR"),
        ("value_vocabulary_id", "VARCHAR"),
        ("allergy_type", "VARCHAR"),
    ),
    "Every clinical fact (condition, drug, procedure, measurement, immunization, allergy, device, "
    "careplan) with its source code; the CDM table is chosen later by the mapped concept's domain "
    "(an allergy is always an observation). "
    "claim_type (inpatient, outpatient, carrier, pharmacy) is set when the fact comes from a claim, "
    "condition_status (primary, secondary) when the source ranks diagnoses; refills, the repeats a "
    "prescription allows; value_code and value_vocabulary_id, a result given as a code (FHIR "
    "valueCodeableConcept), its display staying in value_as_string; allergy_type, 'allergy' or "
    "'intolerance' for an allergy whose source says which.",
    optional=frozenset(
        {"claim_type", "condition_status", "refills", "value_code", "value_vocabulary_id", "allergy_type"}
    ),
)

ENROLLMENT = StagedTable(
    "enrollment",
    (
        ("source_person_id", "VARCHAR"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("payer_source_value", "VARCHAR"),
        ("plan_source_value", "VARCHAR"),
    ),
    "Spans of whole months a person was enrolled with one payer and plan (contract); spans of several "
    "rows may touch or overlap: the CDM merges them into payer_plan_period.",
)

COST = StagedTable(
    "cost",
    (
        ("source_person_id", "VARCHAR"),
        ("visit_key", "VARCHAR"),
        ("event_key", "VARCHAR"),
        ("cost_date", "DATE"),
        ("total_charge", "DOUBLE"),
        ("total_cost", "DOUBLE"),
        ("total_paid", "DOUBLE"),
        ("paid_by_payer", "DOUBLE"),
        ("paid_by_patient", "DOUBLE"),
        ("paid_patient_copay", "DOUBLE"),
        ("paid_patient_deductible", "DOUBLE"),
        ("paid_patient_coinsurance", "DOUBLE"),
        ("paid_by_primary", "DOUBLE"),
        ("amount_allowed", "DOUBLE"),
        ("drg_source_value", "VARCHAR"),
    ),
    "Money of a claim or claim line, linked to the staged visit (visit_key, event_key NULL) or event "
    "(event_key) it pays for; amounts in US dollars as the source states them.",
    # the amounts only claims state: an EHR's cost file leaves them out (NULL); paid_patient_copay is
    # stated by a FHIR ExplanationOfBenefit ('copay' adjudication)
    optional=frozenset(
        {
            "total_paid",
            "paid_by_payer",
            "paid_by_patient",
            "paid_patient_copay",
            "paid_patient_deductible",
            "paid_patient_coinsurance",
            "paid_by_primary",
            "amount_allowed",
            "drg_source_value",
        }
    ),
)

NOTE = StagedTable(
    "note",
    (
        ("source_person_id", "VARCHAR"),
        ("visit_key", "VARCHAR"),
        ("note_datetime", "TIMESTAMP"),
        ("code", "VARCHAR"),
        ("vocabulary_id", "VARCHAR"),
        ("title", "VARCHAR"),
        ("note_text", "VARCHAR"),
        ("provider_key", "VARCHAR"),
        ("language", "VARCHAR"),
    ),
    "Clinical notes as UTF-8 text, the note type's code kept; the text is de-identified before "
    "it is staged (lib/staging/deid.py, docs/notes.md). language: the BCP-47 tag the source states "
    "(en, en-US, es), NULL when it states none.",
    optional=frozenset({"language"}),
)

PROVIDER = StagedTable(
    "provider",
    (
        ("provider_key", "VARCHAR"),
        ("care_site_key", "VARCHAR"),
        ("gender_source_value", "VARCHAR"),
        ("specialty_source_value", "VARCHAR"),
    ),
    "Clinicians, without names.",
)

CARE_SITE = StagedTable(
    "care_site",
    (
        ("care_site_key", "VARCHAR"),
        ("care_site_name", "VARCHAR"),
        ("city", "VARCHAR"),
        ("state", "VARCHAR"),
        ("zip", "VARCHAR"),
    ),
    "Organizations where care is given.",
)

TABLES = (PERSON_SOURCE, PERSON_PII, ENROLLMENT, VISIT, EVENT, NOTE, COST, PROVIDER, CARE_SITE)
BY_NAME = {table.name: table for table in TABLES}
