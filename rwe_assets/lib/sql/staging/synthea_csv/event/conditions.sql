-- Synthea conditions.csv -> staging.event (event_kind 'condition'); CODE is SNOMED CT.
-- Conditions have no id in Synthea: the record key is PATIENT, ENCOUNTER, CODE, START
-- (rwe_csv_natural_key), so a corrected STOP in a later export is a new version of the same record.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('conditions', PATIENT, ENCOUNTER, CODE, START) AS record_key, true AS _natural_key,
    'conditions' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'condition' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(START) AS start_datetime,
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values()),
    rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'START', START, 'STOP', STOP) AS _failure
FROM raw_conditions
