-- Synthea supplies.csv -> staging.event ('device'); CODE is SNOMED CT, QUANTITY a count.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('supplies', PATIENT, ENCOUNTER, CODE, DATE) AS record_key, true AS _natural_key,
    'supplies' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'device' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(quantity := rwe_num(QUANTITY))),
    coalesce(
        rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'DATE', DATE),
        rwe_first_failure([
            {'reason': 'INVALID_NUMBER', 'field': 'QUANTITY', 'failed': rwe_bad_num(QUANTITY)},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'QUANTITY', 'failed': rwe_num(QUANTITY) < 0}
        ])
    ) AS _failure
FROM raw_supplies
