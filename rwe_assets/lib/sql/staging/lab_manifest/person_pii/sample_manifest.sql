-- Lab sample manifest -> staging.person_pii: the test order's identifiers, read only by linkage.
SELECT
    $source AS source_system,
    rwe_text(SOURCE_PERSON_ID) AS record_key,
    'sample_manifest' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(SOURCE_PERSON_ID) AS source_person_id,
    rwe_text(FIRST_NAME) AS given_name,
    rwe_text(LAST_NAME) AS family_name,
    NULL AS maiden_name,
    rwe_date(BIRTH_DATE) AS birth_date,
    rwe_text(SEX) AS sex,
    NULL AS ssn, NULL AS address_line, NULL AS city, NULL AS state, NULL AS zip, NULL AS phone,
    NULL AS drivers_license, NULL AS passport,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'SOURCE_PERSON_ID', 'failed': rwe_text(SOURCE_PERSON_ID) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BIRTH_DATE', 'failed': rwe_bad_date(BIRTH_DATE)}
    ]) AS _failure
FROM raw_sample_manifest
