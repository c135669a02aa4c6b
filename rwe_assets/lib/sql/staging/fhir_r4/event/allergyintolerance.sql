-- FHIR R4 AllergyIntolerance -> staging.event ('allergy'). Codes: code.coding, chosen as in
-- _macros.sql (SNOMED CT or RxNorm in Synthea). value_as_string: the first category (medication,
-- food, environment, biologic), as the Synthea profile keeps CATEGORY. Reactions are not staged.
-- start: onsetDateTime, else onsetPeriod.start, else recordedDate (Synthea writes only recordedDate);
-- end: NULL (FHIR has no end; a resolved allergy shows in clinicalStatus only).
-- provider_key: asserter, else recorder. record_key: 'AllergyIntolerance/<id>'.
-- Rules: id, patient, code, parseable start; verificationStatus 'entered-in-error' -> ENTERED_IN_ERROR.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "verificationStatus": {"coding": [{"code": "VARCHAR"}]},
            "category": ["VARCHAR"],
            "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "patient": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "asserter": {"reference": "VARCHAR"}, "recorder": {"reference": "VARCHAR"},
            "onsetDateTime": "VARCHAR", "onsetPeriod": {"start": "VARCHAR"}, "recordedDate": "VARCHAR"
        }') AS r
    FROM raw_allergyintolerance
),
coded AS (
    SELECT *,
        list_filter(list_transform(r.code.coding, c -> {
            'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
            'vocabulary_id': rwe_fhir_vocabulary(c.system)
        }), c -> c.code IS NOT NULL) AS codings
    FROM src
),
picked AS (
    SELECT *,
        coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1]) AS coding,
        rwe_fhir_ref(r.patient.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(coalesce(r.asserter.reference, r.recorder.reference)) AS provider_ref,
        coalesce(rwe_text(r.onsetDateTime), rwe_text(r.onsetPeriod.start), rwe_text(r.recordedDate)) AS start_text
    FROM coded
)
SELECT
    $source AS source_system,
    'AllergyIntolerance/' || rwe_text(resource_id) AS record_key,
    'allergyintolerance' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'allergy' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    NULL AS end_datetime,
    coding.code AS code,
    coalesce(coding.vocabulary_id, coding.system) AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.code.text)) AS code_description,
    NULL AS value_as_number, rwe_text(r.category[1]) AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'ENTERED_IN_ERROR', 'field': 'verificationStatus',
         'failed': list_contains(list_transform(r.verificationStatus.coding, c -> c.code), 'entered-in-error')},
        {'reason': 'MISSING_PERSON', 'field': 'patient', 'failed': person_ref IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'code', 'failed': coding.code IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'onset[x]', 'failed': rwe_ts(start_text) IS NULL}
    ]) AS _failure
FROM picked
