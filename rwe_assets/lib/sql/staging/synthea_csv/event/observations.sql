-- Synthea observations.csv -> staging.event ('measurement'); CODE is LOINC (a few SNOMED/other codes
-- simply fail to map and are reported). TYPE 'numeric' values become value_as_number (a value that
-- does not parse is quarantined); other types keep the text in value_as_string: a TYPE 'text' VALUE is
-- a display text ('Never smoked tobacco (finding)'), not a code, so no value_code is staged and the CDM
-- row has no value_as_concept_id. UNITS are UCUM (spellings the OMOP vocabulary writes differently are
-- mapped in the CDM build, unit_map.sql).
-- Whether a row lands in MEASUREMENT or OBSERVATION is decided by its mapped concept's domain.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('observations', PATIENT, ENCOUNTER, CODE, DATE) AS record_key, true AS _natural_key,
    'observations' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'measurement' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(DATE) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(CODE) AS code,
    'LOINC' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(
        value_as_number := CASE WHEN TYPE = 'numeric' THEN rwe_num(VALUE) END,
        value_as_string := CASE WHEN TYPE <> 'numeric' THEN rwe_text(VALUE) END,
        unit_source_value := rwe_text(UNITS))),
    coalesce(
        rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'DATE', DATE),
        rwe_first_failure([{'reason': 'INVALID_NUMBER', 'field': 'VALUE', 'failed': TYPE = 'numeric' AND rwe_bad_num(VALUE)}])
    ) AS _failure
FROM raw_observations
