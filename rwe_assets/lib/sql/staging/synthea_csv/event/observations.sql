-- Synthea observations.csv -> staging.event ('measurement'); CODE is LOINC (a few SNOMED/other codes
-- simply fail to map and are reported). TYPE 'numeric' values become value_as_number (a value that
-- does not parse is quarantined); other types keep the text in value_as_string. UNITS are UCUM.
-- Whether a row lands in MEASUREMENT or OBSERVATION is decided by its mapped concept's domain.
SELECT
    $source AS source_system,
    md5(concat_ws('|', 'observations', PATIENT, ENCOUNTER, CATEGORY, CODE, DATE, VALUE, UNITS)) AS record_key,
    'observations' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'measurement' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(CODE) AS code,
    'LOINC' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    CASE WHEN TYPE = 'numeric' THEN rwe_num(VALUE) END AS value_as_number,
    CASE WHEN TYPE <> 'numeric' THEN rwe_text(VALUE) END AS value_as_string,
    rwe_text(UNITS) AS unit_source_value,
    NULL AS quantity, NULL AS days_supply, NULL AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'CODE', 'failed': rwe_text(CODE) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'DATE', 'failed': rwe_ts(DATE) IS NULL},
        {'reason': 'INVALID_NUMBER', 'field': 'VALUE', 'failed': TYPE = 'numeric' AND rwe_bad_num(VALUE)}
    ]) AS _failure
FROM raw_observations
