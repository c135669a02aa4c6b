-- FHIR R4 ImagingStudy -> staging.event ('procedure'): the imaging procedure, as the Synthea profile
-- stages imaging_studies. Codes: the codings of every procedureCode, chosen as in _macros.sql
-- (SNOMED CT in Synthea). A study without procedureCode is MISSING_CODE (series modality / body site
-- are DICOM and SNOMED qualifiers, not the procedure). start: started. record_key: 'ImagingStudy/<id>'.
-- Rules: id, subject, code, parseable start; status 'entered-in-error' -> ENTERED_IN_ERROR,
--   'cancelled' -> CANCELLED.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "procedureCode": [{"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}],
                               "text": "VARCHAR"}],
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "started": "VARCHAR"
        }') AS r
    FROM raw_imagingstudy
),
coded AS (
    SELECT *, rwe_fhir_codings(flatten(list_transform(r.procedureCode, k -> k.coding))) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref
    FROM coded
)
SELECT
    $source AS source_system,
    'ImagingStudy/' || rwe_text(resource_id) AS record_key,
    'imagingstudy' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'procedure' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(r.started) AS start_datetime,
    NULL AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.procedureCode[1].text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply, NULL AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status], [{'code': 'cancelled', 'reason': 'CANCELLED'}]),
        rwe_fhir_event_failure('subject', person_ref, 'procedureCode', coding.code, 'started', r.started)
    ) AS _failure
FROM picked
