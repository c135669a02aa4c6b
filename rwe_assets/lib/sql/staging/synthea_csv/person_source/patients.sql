-- Synthea patients.csv -> staging.person_source
-- Rules: a death date, if present, parseable and not before birth (BIRTH_AFTER_DEATH is quarantined:
-- one of the two dates is wrong and we cannot tell which). A missing or impossible birth date does not
-- quarantine the patient (docs/data-formats.md, "Persons"): birth_date is NULL, birth_year/birth_month
-- keep what the text tells, birth_date_flag says why. record_updated: Synthea states none (the CDM
-- falls back to the patient's last encounter).
-- GENDER, RACE, ETHNICITY are kept as source values; unknown values map to concept 0 later, not dropped.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'patients' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(Id) AS source_person_id,
    rwe_date(BIRTHDATE) AS birth_date,
    rwe_birth_year(BIRTHDATE) AS birth_year,
    rwe_birth_month(BIRTHDATE) AS birth_month,
    rwe_birth_flag(BIRTHDATE) AS birth_date_flag,
    NULL AS record_updated,
    rwe_date(DEATHDATE) AS death_date,
    rwe_text(GENDER) AS gender_source_value,
    rwe_text(RACE) AS race_source_value,
    rwe_text(ETHNICITY) AS ethnicity_source_value,
    rwe_text(CITY) AS city,
    rwe_text(STATE) AS state,
    rwe_text(ZIP) AS zip,
    rwe_text(COUNTY) AS county,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'DEATHDATE', 'failed': rwe_bad_date(DEATHDATE)},
        {'reason': 'BIRTH_AFTER_DEATH', 'field': 'DEATHDATE',
         'failed': coalesce(rwe_date(DEATHDATE) < rwe_date(BIRTHDATE), year(rwe_date(DEATHDATE)) < rwe_birth_year(BIRTHDATE))}
    ]) AS _failure
FROM raw_patients
