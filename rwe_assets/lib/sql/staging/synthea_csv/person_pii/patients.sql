-- Synthea patients.csv -> staging.person_pii (identifiers for linkage only).
-- Synthea appends digits to names (Maynard46): they are kept here as written; linkage normalizes.
-- A missing, partial or impossible birth date stays in linkage: birth_date NULL, year/month kept.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'patients' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(Id) AS source_person_id,
    rwe_text(FIRST) AS given_name,
    rwe_text(LAST) AS family_name,
    rwe_text(MAIDEN) AS maiden_name,
    rwe_date(BIRTHDATE) AS birth_date,
    rwe_birth_year(BIRTHDATE) AS birth_year,
    rwe_birth_month(BIRTHDATE) AS birth_month,
    rwe_text(GENDER) AS sex,
    rwe_text(SSN) AS ssn,
    rwe_text(ADDRESS) AS address_line,
    rwe_text(CITY) AS city,
    rwe_text(STATE) AS state,
    rwe_text(ZIP) AS zip,
    NULL AS phone,
    rwe_text(DRIVERS) AS drivers_license,
    rwe_text(PASSPORT) AS passport,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}
    ]) AS _failure
FROM raw_patients
