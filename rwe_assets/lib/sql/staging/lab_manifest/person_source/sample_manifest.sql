-- Lab sample manifest -> staging.person_source: the person behind each sample (demographics OMOP keeps).
-- A missing, partial or impossible BIRTH_DATE does not quarantine the person (docs/data-formats.md,
-- "Persons"): birth_date NULL, birth_year/birth_month what the text tells, birth_date_flag why.
-- record_updated: the person's latest specimen date in the manifest (the latest test order that stated
-- these demographics); every row of a person carries it, so one person's samples stay identical.
SELECT
    $source AS source_system,
    rwe_text(SOURCE_PERSON_ID) AS record_key,
    'sample_manifest' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(SOURCE_PERSON_ID) AS source_person_id,
    rwe_date(BIRTH_DATE) AS birth_date,
    rwe_birth_year(BIRTH_DATE) AS birth_year,
    rwe_birth_month(BIRTH_DATE) AS birth_month,
    rwe_birth_flag(BIRTH_DATE) AS birth_date_flag,
    max(rwe_ts(SPECIMEN_DATE)) OVER (PARTITION BY rwe_text(SOURCE_PERSON_ID)) AS record_updated,
    NULL AS death_date,
    rwe_text(SEX) AS gender_source_value,
    NULL AS race_source_value,
    NULL AS ethnicity_source_value,
    NULL AS city, NULL AS state, NULL AS zip, NULL AS county,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'SOURCE_PERSON_ID', 'failed': rwe_text(SOURCE_PERSON_ID) IS NULL}
    ]) AS _failure
FROM raw_sample_manifest
