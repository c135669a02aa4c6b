-- Synthea imaging_studies.csv -> staging.event ('procedure'): the imaging procedure, PROCEDURE_CODE
-- in SNOMED CT. One row per series/instance in Synthea; the record key is the study row's Id.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'imaging_studies' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'procedure' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(PROCEDURE_CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(MODALITY_DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values()),
    coalesce(
        rwe_first_failure([{'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}]),
        rwe_csv_event_failure('PATIENT', PATIENT, 'PROCEDURE_CODE', PROCEDURE_CODE, 'DATE', DATE)
    ) AS _failure
FROM raw_imaging_studies
