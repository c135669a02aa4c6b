-- FHIR R4 Practitioner -> staging.provider. Names, telecom and addresses are not staged.
-- provider_key: the NPI (identifier system http://hl7.org/fhir/sid/us-npi) when there is one, else the
--   resource id: encounters and other resources may point at a practitioner by NPI (conditional
--   reference, as Synthea does) and rwe_fhir_ref resolves those to the NPI. specialty_source_value: the first qualification's code (text, else
--   display, else code); Synthea puts specialties on PractitionerRole instead, which is not staged, so
--   it is NULL there. care_site_key: NULL (the organization is on PractitionerRole too).
-- Rules: id required.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "gender": "VARCHAR", "identifier": [{"system": "VARCHAR", "value": "VARCHAR"}],
            "qualification": [{"code": {"coding": [{"code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"}}]
        }') AS r
    FROM raw_practitioner
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'practitioner' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    coalesce(rwe_text(list_filter(r.identifier, i -> i.system = 'http://hl7.org/fhir/sid/us-npi')[1].value),
             rwe_text(resource_id)) AS provider_key,
    NULL AS care_site_key,
    rwe_text(r.gender) AS gender_source_value,
    coalesce(rwe_text(r.qualification[1].code.text), rwe_text(r.qualification[1].code.coding[1].display),
             rwe_text(r.qualification[1].code.coding[1].code)) AS specialty_source_value,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL}
    ]) AS _failure
FROM src
