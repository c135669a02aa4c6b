-- Synthea organizations.csv -> staging.care_site. The organization's own name is kept (it is not a
-- person); its street address is not.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'organizations' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(Id) AS care_site_key,
    rwe_text(NAME) AS care_site_name,
    rwe_text(CITY) AS city,
    rwe_text(STATE) AS state,
    rwe_text(ZIP) AS zip,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL}
    ]) AS _failure
FROM raw_organizations
