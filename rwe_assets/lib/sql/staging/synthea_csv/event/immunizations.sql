-- Synthea immunizations.csv -> staging.event ('immunization'); CODE is CVX. Vaccines are drugs in
-- OMOP: CVX maps to standard RxNorm/CVX concepts of domain Drug, so they land in DRUG_EXPOSURE.
SELECT
    $source AS source_system,
    md5(concat_ws('|', 'immunizations', PATIENT, ENCOUNTER, CODE, DATE)) AS record_key,
    'immunizations' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'immunization' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(CODE) AS code,
    'CVX' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    1.0 AS quantity, NULL AS days_supply, NULL AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'CODE', 'failed': rwe_text(CODE) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'DATE', 'failed': rwe_ts(DATE) IS NULL}
    ]) AS _failure
FROM raw_immunizations
