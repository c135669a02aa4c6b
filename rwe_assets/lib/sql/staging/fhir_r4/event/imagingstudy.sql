-- FHIR R4 ImagingStudy -> staging.event ('procedure'): the imaging procedure, as the Synthea profile
-- stages imaging_studies. Codes: the codings of every procedureCode, chosen as in _macros.sql
-- (SNOMED CT in Synthea). A study without procedureCode is MISSING_CODE (series modality / body site
-- are DICOM and SNOMED qualifiers, not the procedure). start: started. record_key: 'ImagingStudy/<id>'.
-- Rules: id, subject, code, parseable start; status 'entered-in-error' -> ENTERED_IN_ERROR.
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
    SELECT *,
        list_filter(list_transform(flatten(list_transform(r.procedureCode, k -> k.coding)), c -> {
            'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
            'vocabulary_id': rwe_fhir_vocabulary(c.system)
        }), c -> c.code IS NOT NULL) AS codings
    FROM src
),
picked AS (
    SELECT *,
        coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1]) AS coding,
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
    coalesce(coding.vocabulary_id, coding.system) AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.procedureCode[1].text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply, NULL AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'ENTERED_IN_ERROR', 'field': 'status', 'failed': r.status = 'entered-in-error'},
        {'reason': 'MISSING_PERSON', 'field': 'subject', 'failed': person_ref IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'procedureCode', 'failed': coding.code IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'started', 'failed': rwe_ts(r.started) IS NULL}
    ]) AS _failure
FROM picked
