-- Synthea providers.csv -> staging.provider. Names and street addresses are not staged.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'providers' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(Id) AS provider_key,
    rwe_text(ORGANIZATION) AS care_site_key,
    rwe_text(GENDER) AS gender_source_value,
    rwe_text(SPECIALITY) AS specialty_source_value,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}
    ]) AS _failure
FROM raw_providers
