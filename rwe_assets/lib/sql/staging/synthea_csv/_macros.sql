-- Macros of the synthea_csv profile, created before its SQL files run (lib/staging/build.py).
--
-- Quarantine checks shared by the files. Each macro returns the first check of its group that fails,
-- as {reason, field, failed} (rwe_first_failure), or NULL; a file chains the groups and its own checks,
-- in the order they are tested, with coalesce(...), which gives the first failure overall (as
-- rwe_first_failure over one list would, without building and concatenating lists per row). Values
-- are the raw CSV text; a field is the CSV column's name.
--
-- rwe_csv_natural_key(entity, patient, encounter, code, start): the record key of a Synthea file
--   without an Id column: the fields a correction does not change (a corrected STOP, VALUE or UNITS
--   is a new version of the same record, not a second record). A file using it also outputs
--   `true AS _natural_key`, so rows of one batch sharing the key with different content (two
--   prescriptions of one drug started in one encounter) become `<key>#2`, ... (lib/staging/lifecycle.py).
CREATE OR REPLACE MACRO rwe_csv_natural_key(entity, patient, encounter, code, start) AS
    md5(concat_ws('|', entity, rwe_text(patient), rwe_text(encounter), rwe_text(code), rwe_text(start)));

-- rwe_csv_event_failure(person_field, person, code_field, code, start_field, start_text
--                       [, end_field, end_text]): the checks every event file makes, in this order:
--   MISSING_PERSON (blank patient), MISSING_CODE (blank code), then rwe_period_failure.
CREATE OR REPLACE MACRO rwe_csv_event_failure(person_field, person, code_field, code,
        start_field, start_text, end_field := NULL, end_text := NULL) AS
    coalesce(
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': person_field, 'failed': rwe_text(person) IS NULL},
            {'reason': 'MISSING_CODE', 'field': code_field, 'failed': rwe_text(code) IS NULL}
        ]),
        rwe_period_failure(start_field, start_text, end_field, end_text));

-- rwe_csv_medication_failure(patient, code, start, stop, dispenses): a medications.csv row's checks,
--   made by its drug event and by its cost row alike (the money of a quarantined prescription is
--   quarantined with it): the event checks, then DISPENSES numeric (INVALID_NUMBER) and not negative
--   (NEGATIVE_QUANTITY).
CREATE OR REPLACE MACRO rwe_csv_medication_failure(patient, code, start_text, stop_text, dispenses) AS
    coalesce(
        rwe_csv_event_failure('PATIENT', patient, 'CODE', code, 'START', start_text, 'STOP', stop_text),
        rwe_first_failure([
            {'reason': 'INVALID_NUMBER', 'field': 'DISPENSES', 'failed': rwe_bad_num(dispenses)},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'DISPENSES', 'failed': rwe_num(dispenses) < 0}
        ]));

-- rwe_csv_event_values(...): the staging.event columns a Synthea file mostly has no source for
--   (value_as_number, value_as_string, unit_source_value, quantity, days_supply, provider_key), as one
--   struct whose fields are NULL unless given by name. A file writes
--   `unnest(rwe_csv_event_values(quantity := rwe_num(QUANTITY)))`: unnest of a struct expands it into
--   one column per field, so the six columns are there, by name, as the framework selects them.
CREATE OR REPLACE MACRO rwe_csv_event_values(value_as_number := NULL, value_as_string := NULL,
        unit_source_value := NULL, quantity := NULL, days_supply := NULL, provider_key := NULL) AS {
    'value_as_number': value_as_number, 'value_as_string': value_as_string,
    'unit_source_value': unit_source_value, 'quantity': quantity, 'days_supply': days_supply,
    'provider_key': provider_key
};

-- rwe_csv_coverage_date(text, year_end): a payer_transitions bound. A bare year (the oldest exports'
--   START_YEAR/END_YEAR) is its first day, or its last with year_end; anything else is read as a
--   date or timestamp (Synthea 3.0 writes timestamps under the same names, 3.1+ START_DATE/END_DATE).
CREATE OR REPLACE MACRO rwe_csv_coverage_date(x, year_end) AS CASE
    WHEN regexp_full_match(rwe_text(x), '[0-9]{4}')
    THEN CASE WHEN year_end THEN make_date(CAST(rwe_text(x) AS INTEGER), 12, 31)
              ELSE make_date(CAST(rwe_text(x) AS INTEGER), 1, 1) END
    ELSE rwe_date(x) END;

-- rwe_csv_patient_share(total, covered): what the payer did not cover (NULL when it covered more than
--   the total: the amounts disagree and no split is invented).
CREATE OR REPLACE MACRO rwe_csv_patient_share(total, covered) AS
    CASE WHEN rwe_num(total) >= rwe_num(covered) THEN rwe_num(total) - rwe_num(covered) END;
