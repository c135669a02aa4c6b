-- FHIR R4 Device -> staging.event ('device'). Codes: type.coding, chosen as in _macros.sql (SNOMED
-- CT in Synthea). UDI, serial and lot numbers are not staged (they can identify a patient).
-- start: R4 Device has no "in use since" element (that is DeviceUseStatement, which Synthea does not
--   export). manufactureDate is used as a PROXY; in Synthea exports it is 21 days before the device was
--   given to the patient. end: NULL (expirationDate is the shelf life, not the removal). quantity 1.
-- Device has no encounter: visit_key NULL. record_key: 'Device/<id>'.
-- Rules: id, patient, code, parseable manufactureDate; status 'entered-in-error' -> ENTERED_IN_ERROR.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "deviceName": [{"name": "VARCHAR"}],
            "patient": {"reference": "VARCHAR"}, "manufactureDate": "VARCHAR"
        }') AS r
    FROM raw_device
),
coded AS (
    SELECT *,
        list_filter(list_transform(r.type.coding, c -> {
            'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
            'vocabulary_id': rwe_fhir_vocabulary(c.system)
        }), c -> c.code IS NOT NULL) AS codings
    FROM src
),
picked AS (
    SELECT *,
        coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1]) AS coding,
        rwe_fhir_ref(r.patient.reference) AS person_ref
    FROM coded
)
SELECT
    $source AS source_system,
    'Device/' || rwe_text(resource_id) AS record_key,
    'device' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'device' AS event_kind,
    person_ref AS source_person_id,
    NULL AS visit_key,
    rwe_ts(r.manufactureDate) AS start_datetime,
    NULL AS end_datetime,
    coding.code AS code,
    coalesce(coding.vocabulary_id, coding.system) AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.type.text), rwe_text(r.deviceName[1].name)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    1.0 AS quantity, NULL AS days_supply, NULL AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'ENTERED_IN_ERROR', 'field': 'status', 'failed': r.status = 'entered-in-error'},
        {'reason': 'MISSING_PERSON', 'field': 'patient', 'failed': person_ref IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'type', 'failed': coding.code IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'manufactureDate', 'failed': rwe_ts(r.manufactureDate) IS NULL}
    ]) AS _failure
FROM picked
