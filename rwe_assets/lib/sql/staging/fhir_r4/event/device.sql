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
    SELECT *, rwe_fhir_codings(r.type.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
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
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.type.text), rwe_text(r.deviceName[1].name)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    1.0 AS quantity, NULL AS days_supply, NULL AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status]),
        rwe_fhir_event_failure('patient', person_ref, 'type', coding.code, 'manufactureDate', r.manufactureDate)
    ) AS _failure
FROM picked
