-- Synthea careplans.csv -> staging.event ('careplan'); CODE is SNOMED CT (mostly procedure and
-- regime/therapy concepts). ETL-Synthea drops care plans; we stage them and let the domain decide.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'careplans' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'careplan' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(START) AS start_datetime,
    rwe_ts(STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply, NULL AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL},
        {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'CODE', 'failed': rwe_text(CODE) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'START', 'failed': rwe_ts(START) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'STOP', 'failed': rwe_bad_ts(STOP)},
        {'reason': 'END_BEFORE_START', 'field': 'STOP', 'failed': rwe_ts(STOP) < rwe_ts(START)}
    ]) AS _failure
FROM raw_careplans
