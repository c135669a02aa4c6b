-- FHIR R4 Procedure -> staging.event ('procedure'). Codes: code.coding, chosen as in _macros.sql
-- (SNOMED CT in Synthea; CPT-4, HCPCS, ICD-10-PCS map by system).
-- start: performedDateTime, else performedPeriod.start; end: performedPeriod.end.
-- provider_key: the first performer's actor. record_key: 'Procedure/<id>'.
-- Rules: id, subject, code, parseable start; end parseable and not before start; status
--   'entered-in-error' -> ENTERED_IN_ERROR, 'not-done' -> NOT_DONE (the procedure did not happen),
--   'preparation' -> PLANNED.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "performer": [{"actor": {"reference": "VARCHAR"}}],
            "performedDateTime": "VARCHAR", "performedPeriod": {"start": "VARCHAR", "end": "VARCHAR"}
        }') AS r
    FROM raw_procedure
),
coded AS (
    SELECT *, rwe_fhir_codings(r.code.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(r.performer[1].actor.reference) AS provider_ref,
        coalesce(rwe_text(r.performedDateTime), rwe_text(r.performedPeriod.start)) AS start_text,
        rwe_text(r.performedPeriod."end") AS end_text
    FROM coded
)
SELECT
    $source AS source_system,
    'Procedure/' || rwe_text(resource_id) AS record_key,
    'procedure' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'procedure' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    rwe_ts_end(start_text, end_text) AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.code.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'not-done', 'reason': 'NOT_DONE'}, {'code': 'preparation', 'reason': 'PLANNED'}]),
        rwe_fhir_event_failure('subject', person_ref, 'code', coding.code,
                               'performed[x]', start_text, 'performedPeriod.end', end_text)
    ) AS _failure
FROM picked
