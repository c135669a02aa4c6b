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
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values()),
    coalesce(
        rwe_first_failure([{'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}]),
        rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'START', START, 'STOP', STOP)
    ) AS _failure
FROM raw_careplans
