-- FHIR R4 Organization -> staging.care_site. The organization's name is kept (it is not a person);
-- street lines are not. Address: the first one whose use is not 'old'; else the first.
-- care_site_key: the resource id (Synthea's conditional Encounter.serviceProvider references carry an
--   identifier whose value is this id, so visit.care_site_key matches).
-- Rules: id required.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "name": "VARCHAR",
            "address": [{"use": "VARCHAR", "city": "VARCHAR", "state": "VARCHAR", "postalCode": "VARCHAR"}]
        }') AS r
    FROM raw_organization
),
parts AS (
    SELECT *, coalesce(list_filter(r.address, a -> coalesce(a.use, '') <> 'old')[1], r.address[1]) AS addr
    FROM src
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'organization' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    rwe_text(resource_id) AS care_site_key,
    rwe_text(r.name) AS care_site_name,
    rwe_text(addr.city) AS city,
    rwe_text(addr.state) AS state,
    rwe_text(addr.postalCode) AS zip,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL}
    ]) AS _failure
FROM parts
