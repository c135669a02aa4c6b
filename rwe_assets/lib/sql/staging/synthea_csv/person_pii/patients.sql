-- Synthea patients.csv -> staging.person_pii (identifiers for linkage only).
-- Synthea appends digits to names (Maynard46): they are kept here as written; linkage normalizes.
-- A missing, partial or impossible birth date stays in linkage: birth_date NULL, year/month kept.
-- ssn, drivers_license, passport: the Synthea columns as before (the review export and the note
--   de-identification read them); `identifiers` holds every declared identifier typed.
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
    -- identifiers: the fields the source's registry entry declares (sources.yaml `identifiers`, set as the
    --   variable rwe_identifier_fields by lib/sources.py), each {type, system, value}, read from the row
    --   by name (a declared column the file lacks gives no identifier), sorted; raw values, linkage normalizes.
    list_sort(list_filter(list_transform(
        from_json(coalesce(getvariable('rwe_identifier_fields'), '[]'), '[{"type": "VARCHAR", "system": "VARCHAR", "path": "VARCHAR", "system_path": "VARCHAR", "match_system": "VARCHAR"}]'),
        f -> {'type': f.type, 'system': coalesce(f.system, rwe_text(json_extract_string(_row_json, f.system_path))),
              'value': rwe_text(json_extract_string(_row_json, f.path))}),
        i -> i.value IS NOT NULL)) AS identifiers,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}
    ]) AS _failure
FROM (SELECT *, to_json(p) AS _row_json FROM raw_patients p)
