-- Lab sample manifest -> staging.person_pii: the test order's identifiers, read only by linkage.
-- A missing, partial or impossible BIRTH_DATE stays in linkage: birth_date NULL, year/month kept.
-- identifiers: the lab's own patient id and the ordering site's (ORDERING_SITE_PATIENT_ID, its system
--   the ORDERING_SITE): a manifest without those columns gives no such identifier. A person's samples
--   may come from several sites: each row holds the identifiers of all of the person's rows, so the rows
--   of one person stay identical (as person_source's record_updated).
SELECT
    $source AS source_system,
    rwe_text(SOURCE_PERSON_ID) AS record_key,
    'sample_manifest' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(SOURCE_PERSON_ID) AS source_person_id,
    rwe_text(FIRST_NAME) AS given_name,
    rwe_text(LAST_NAME) AS family_name,
    NULL AS maiden_name,
    rwe_date(BIRTH_DATE) AS birth_date,
    rwe_birth_year(BIRTH_DATE) AS birth_year,
    rwe_birth_month(BIRTH_DATE) AS birth_month,
    rwe_text(SEX) AS sex,
    NULL AS ssn, NULL AS address_line, NULL AS city, NULL AS state, NULL AS zip, NULL AS phone,
    NULL AS drivers_license, NULL AS passport,
    -- identifiers: those the source's registry entry declares (rwe_declared_identifiers, staging/build.py)
    list_sort(list_distinct(flatten(list(rwe_declared_identifiers(_row_json)) OVER (PARTITION BY rwe_text(SOURCE_PERSON_ID))))) AS identifiers,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'SOURCE_PERSON_ID', 'failed': rwe_text(SOURCE_PERSON_ID) IS NULL}
    ]) AS _failure
FROM (SELECT *, to_json(m) AS _row_json FROM raw_sample_manifest m)
