-- Lab sample manifest -> staging.person_source: the person behind each sample (demographics OMOP keeps).
SELECT
    $source AS source_system,
    rwe_text(SOURCE_PERSON_ID) AS record_key,
    'sample_manifest' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(SOURCE_PERSON_ID) AS source_person_id,
    rwe_date(BIRTH_DATE) AS birth_date,
    NULL AS death_date,
    rwe_text(SEX) AS gender_source_value,
    NULL AS race_source_value,
    NULL AS ethnicity_source_value,
    NULL AS city, NULL AS state, NULL AS zip, NULL AS county,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'SOURCE_PERSON_ID', 'failed': rwe_text(SOURCE_PERSON_ID) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BIRTH_DATE', 'failed': rwe_bad_date(BIRTH_DATE)}
    ]) AS _failure
FROM raw_sample_manifest
