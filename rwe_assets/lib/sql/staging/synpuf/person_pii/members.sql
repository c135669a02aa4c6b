-- Payer member file (members.csv) -> staging.person_pii, read only by linkage. Real DE-SynPUF has no
-- member file: its beneficiaries then have no PII row. A missing, partial or impossible BIRTH_DATE
-- stays in linkage: birth_date NULL, birth_year/birth_month what the text tells.
SELECT
    $source AS source_system,
    rwe_text(DESYNPUF_ID) AS record_key,
    'members' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    rwe_text(FIRST_NAME) AS given_name,
    rwe_text(LAST_NAME) AS family_name,
    NULL AS maiden_name,
    rwe_date(BIRTH_DATE) AS birth_date,
    rwe_birth_year(BIRTH_DATE) AS birth_year,
    rwe_birth_month(BIRTH_DATE) AS birth_month,
    rwe_text(SEX) AS sex,
    rwe_text(SSN) AS ssn,
    rwe_text(ADDRESS) AS address_line,
    rwe_text(CITY) AS city,
    rwe_text(STATE) AS state,
    rwe_text(ZIP) AS zip,
    rwe_text(PHONE) AS phone,
    NULL AS drivers_license,
    NULL AS passport,
    -- identifiers: those the source's registry entry declares (rwe_declared_identifiers, staging/build.py)
    list_sort(rwe_declared_identifiers(_row_json)) AS identifiers,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'DESYNPUF_ID', 'failed': rwe_text(DESYNPUF_ID) IS NULL}
    ]) AS _failure
FROM (SELECT *, to_json(m) AS _row_json FROM raw_members m)
