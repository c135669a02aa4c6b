-- Synthea patients.csv -> staging.person_pii (identifiers for linkage only).
-- Synthea appends digits to names (Maynard46): they are kept here as written; linkage normalizes.
-- A missing, partial or impossible birth date stays in linkage: birth_date NULL, year/month kept.
-- ssn, drivers_license, passport: the Synthea columns as before (the review export and the note
--   de-identification read them); `identifiers` holds every declared identifier typed.
-- email: an optional EMAIL column (Synthea writes none; a site's export may add one), read from the
--   row's JSON so that a file without the column stages as before. Read only by linkage (keyed tokens).
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
    rwe_text(json_extract_string(_row_json, '$.EMAIL')) AS email,
    -- identifiers: those the source's registry entry declares (rwe_declared_identifiers, staging/build.py)
    list_sort(rwe_declared_identifiers(_row_json)) AS identifiers,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}
    ]) AS _failure
FROM (SELECT *, to_json(p) AS _row_json FROM raw_patients p)
