-- Synthea immunizations.csv -> staging.event ('immunization'); CODE is CVX. Vaccines are drugs in
-- OMOP: CVX maps to standard RxNorm/CVX concepts of domain Drug, so they land in DRUG_EXPOSURE.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('immunizations', PATIENT, ENCOUNTER, CODE, DATE) AS record_key, true AS _natural_key,
    'immunizations' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'immunization' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(CODE) AS code,
    'CVX' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(quantity := 1.0)),
    rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'DATE', DATE) AS _failure
FROM raw_immunizations
