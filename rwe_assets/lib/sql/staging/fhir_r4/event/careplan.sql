-- FHIR R4 CarePlan -> staging.event ('careplan'). Codes: the codings of every CarePlan.category,
-- chosen as in _macros.sql: Synthea writes the US Core 'assess-plan' category (unknown system)
-- and then the SNOMED CT plan (e.g. 698360004 Diabetes self management plan), so the SNOMED code wins,
-- as the Synthea CSV's CODE. A plan with only 'assess-plan' keeps that code with its system URL as
-- vocabulary_id (reported unmapped). Activities (activity.detail.code) are not staged.
-- start / end: period.start / period.end. record_key: 'CarePlan/<id>'.
-- Rules: id, subject, code, parseable start; end parseable, not before start; status
--   'entered-in-error' -> ENTERED_IN_ERROR, 'revoked' -> CANCELLED, 'draft' -> PLANNED.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "category": [{"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"}],
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "period": {"start": "VARCHAR", "end": "VARCHAR"}
        }') AS r
    FROM raw_careplan
),
coded AS (
    SELECT *, rwe_fhir_codings(flatten(list_transform(r.category, k -> k.coding))) AS codings FROM src
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
    'CarePlan/' || rwe_text(resource_id) AS record_key,
    'careplan' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'careplan' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(r.period.start) AS start_datetime,
    rwe_ts_end(r.period.start, r.period."end") AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coding.display AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply, NULL AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'revoked', 'reason': 'CANCELLED'}, {'code': 'draft', 'reason': 'PLANNED'}]),
        rwe_fhir_event_failure('subject', person_ref, 'category', coding.code,
                               'period.start', r.period.start, 'period.end', r.period."end")
    ) AS _failure
FROM picked
