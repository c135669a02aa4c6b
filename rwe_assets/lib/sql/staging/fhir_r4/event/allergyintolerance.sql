-- FHIR R4 AllergyIntolerance -> staging.event ('allergy'; the CDM build writes every allergy to
-- OBSERVATION, the substance as value_as_concept_id). Codes: code.coding, chosen as in _macros.sql
-- (SNOMED CT or RxNorm in Synthea): the substance. value_as_string: the first category (medication,
-- food, environment, biologic), as the Synthea profile keeps CATEGORY; allergy_type: type ('allergy',
-- 'intolerance'), NULL when absent. Reactions are not staged.
-- start: onsetDateTime, else onsetPeriod.start, else recordedDate (Synthea writes only recordedDate);
-- end: NULL (FHIR has no end; a resolved allergy shows in clinicalStatus only).
-- provider_key: asserter, else recorder. record_key: 'AllergyIntolerance/<id>'.
-- Rules: id, patient, code, parseable start; verificationStatus 'entered-in-error' -> ENTERED_IN_ERROR,
--   'refuted' -> REFUTED (status reasons: README.md).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "verificationStatus": {"coding": [{"code": "VARCHAR"}]},
            "type": "VARCHAR", "category": ["VARCHAR"],
            "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "patient": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "asserter": {"reference": "VARCHAR"}, "recorder": {"reference": "VARCHAR"},
            "onsetDateTime": "VARCHAR", "onsetPeriod": {"start": "VARCHAR"}, "recordedDate": "VARCHAR"
        }') AS r
    FROM raw_allergyintolerance
),
coded AS (
    SELECT *, rwe_fhir_codings(r.code.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
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
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.code.text)) AS code_description,
    NULL AS value_as_number, rwe_text(r.category[1]) AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    lower(rwe_text(r.type)) AS allergy_type,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'verificationStatus',
                                list_transform(r.verificationStatus.coding, c -> c.code),
                                [{'code': 'refuted', 'reason': 'REFUTED'}]),
        rwe_fhir_event_failure('patient', person_ref, 'code', coding.code, 'onset[x]', start_text)
    ) AS _failure
FROM picked
