-- Synthea patients.csv -> staging.person_source
-- Rules: birth date required and parseable; a death date, if present, parseable and not before birth
-- (BIRTH_AFTER_DEATH is quarantined: one of the two dates is wrong and we cannot tell which).
-- GENDER, RACE, ETHNICITY are kept as source values; unknown values map to concept 0 later, not dropped.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'patients' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(Id) AS source_person_id,
    rwe_date(BIRTHDATE) AS birth_date,
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
        {'reason': 'MISSING_BIRTH_DATE', 'field': 'BIRTHDATE', 'failed': rwe_text(BIRTHDATE) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BIRTHDATE', 'failed': rwe_bad_date(BIRTHDATE)},
        {'reason': 'INVALID_DATE', 'field': 'DEATHDATE', 'failed': rwe_bad_date(DEATHDATE)},
        {'reason': 'BIRTH_AFTER_DEATH', 'field': 'DEATHDATE', 'failed': rwe_date(DEATHDATE) < rwe_date(BIRTHDATE)}
    ]) AS _failure
FROM raw_patients
