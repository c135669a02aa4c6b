-- Synthea devices.csv -> staging.event ('device'); CODE is SNOMED CT. The UDI is not staged: it is
-- a device serial and can identify a patient.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('devices', PATIENT, ENCOUNTER, CODE, START) AS record_key, true AS _natural_key,
    'devices' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'device' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(START) AS start_datetime,
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(quantity := 1.0)),
    rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'START', START, 'STOP', STOP) AS _failure
FROM raw_devices
