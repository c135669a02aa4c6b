-- FHIR R4 Condition -> staging.event ('condition'). Codes: code.coding, chosen as in _macros.sql
-- (SNOMED CT in Synthea; ICD-10-CM etc. map by system).
-- start: onsetDateTime, else onsetPeriod.start, else recordedDate (the FHIR-to-OMOP fallback when the
--   onset is not known); end: abatementDateTime, else abatementPeriod.end.
-- source_person_id (subject), visit_key (encounter), provider_key (asserter, else recorder): the
--   referenced ids, normalized by rwe_fhir_ref (_macros.sql).
-- record_key: 'Condition/<id>' (FHIR ids are unique per resource type only, and the event table holds
--   every type).
-- Rules: id, subject, code and a parseable start required; end parseable and not before start;
--   verificationStatus 'entered-in-error' -> ENTERED_IN_ERROR, 'refuted' -> REFUTED (ruled out).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "verificationStatus": {"coding": [{"code": "VARCHAR"}]},
            "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "asserter": {"reference": "VARCHAR"}, "recorder": {"reference": "VARCHAR"},
            "onsetDateTime": "VARCHAR", "onsetPeriod": {"start": "VARCHAR"}, "recordedDate": "VARCHAR",
            "abatementDateTime": "VARCHAR", "abatementPeriod": {"end": "VARCHAR"}
        }') AS r
    FROM raw_condition
),
coded AS (
    SELECT *, rwe_fhir_codings(r.code.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(coalesce(r.asserter.reference, r.recorder.reference)) AS provider_ref,
        coalesce(rwe_text(r.onsetDateTime), rwe_text(r.onsetPeriod.start), rwe_text(r.recordedDate)) AS start_text,
        coalesce(rwe_text(r.abatementDateTime), rwe_text(r.abatementPeriod."end")) AS end_text
    FROM coded
)
SELECT
    $source AS source_system,
    'Condition/' || rwe_text(resource_id) AS record_key,
    'condition' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'condition' AS event_kind,
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
        rwe_fhir_status_failure(resource_id, 'verificationStatus',
                                list_transform(r.verificationStatus.coding, c -> c.code),
                                [{'code': 'refuted', 'reason': 'REFUTED'}]),
        rwe_fhir_event_failure('subject', person_ref, 'code', coding.code,
                               'onsetDateTime', start_text, 'abatementDateTime', end_text)
    ) AS _failure
FROM picked
