-- FHIR R4 Immunization -> staging.event ('immunization'). Codes: vaccineCode.coding, chosen as in
-- _macros.sql (CVX in Synthea; NDC maps by system). Vaccines are drugs in OMOP.
-- start: occurrenceDateTime (occurrenceString is free text and does not parse: INVALID_DATE).
-- quantity 1 (one dose given, as the Synthea profile; doseQuantity is a volume, not a count).
-- provider_key: the first performer's actor. record_key: 'Immunization/<id>'.
-- Rules: id, patient, code, parseable date; status 'entered-in-error' -> ENTERED_IN_ERROR,
--   'not-done' -> NOT_DONE (the vaccine was not given).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "vaccineCode": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "patient": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "performer": [{"actor": {"reference": "VARCHAR"}}],
            "occurrenceDateTime": "VARCHAR", "occurrenceString": "VARCHAR"
        }') AS r
    FROM raw_immunization
),
coded AS (
    SELECT *, rwe_fhir_codings(r.vaccineCode.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.patient.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(r.performer[1].actor.reference) AS provider_ref,
        coalesce(rwe_text(r.occurrenceDateTime), rwe_text(r.occurrenceString)) AS start_text
    FROM coded
)
SELECT
    $source AS source_system,
    'Immunization/' || rwe_text(resource_id) AS record_key,
    'immunization' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'immunization' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    NULL AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.vaccineCode.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    1.0 AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status], [{'code': 'not-done', 'reason': 'NOT_DONE'}]),
        rwe_fhir_event_failure('patient', person_ref, 'vaccineCode', coding.code, 'occurrence[x]', start_text)
    ) AS _failure
FROM picked
