-- Synthea encounters.csv -> staging.visit
-- visit_class is ENCOUNTERCLASS lower-cased (ambulatory, emergency, inpatient, outpatient, urgentcare,
-- wellness, home, virtual, hospice, snf); empty -> 'other'. A missing STOP is kept as NULL (the visit
-- rollup treats it as ending when it starts); a STOP before START is quarantined.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'encounters' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(PATIENT) AS source_person_id,
    coalesce(lower(rwe_text(ENCOUNTERCLASS)), 'other') AS visit_class,
    rwe_ts(START) AS start_datetime,
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'SNOMED' AS vocabulary_id,
    rwe_text(ENCOUNTERCLASS) AS source_value,
    rwe_text(PROVIDER) AS provider_key,
    rwe_text(ORGANIZATION) AS care_site_key,
    coalesce(
        rwe_first_failure([
            {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL},
            {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL}
        ]),
        rwe_period_failure('START', START, 'STOP', STOP)
    ) AS _failure
FROM raw_encounters
