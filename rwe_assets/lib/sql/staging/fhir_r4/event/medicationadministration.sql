-- FHIR R4 MedicationAdministration -> staging.event ('drug'): a drug given (Synthea: inpatient
-- administrations). Codes: medicationCodeableConcept.coding, chosen as in _macros.sql (RxNorm), else
-- medicationReference resolved as in medicationrequest.sql.
-- start / end: effectiveDateTime, else effectivePeriod.start / effectivePeriod.end. visit_key: context
-- (the R4 name of the encounter). quantity: not staged (dosage.dose is an amount in mg/mL, not a
-- count). provider_key: the first performer's actor. record_key: 'MedicationAdministration/<id>'.
-- Rules: id, subject, code, parseable start; end not before start; status 'entered-in-error' ->
--   ENTERED_IN_ERROR, 'not-done' -> NOT_DONE.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "medicationCodeableConcept": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}],
                                          "text": "VARCHAR"},
            "medicationReference": {"reference": "VARCHAR"},
            "contained": [{"resourceType": "VARCHAR", "id": "VARCHAR",
                           "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}]}}],
            "subject": {"reference": "VARCHAR"}, "context": {"reference": "VARCHAR"},
            "performer": [{"actor": {"reference": "VARCHAR"}}],
            "effectiveDateTime": "VARCHAR", "effectivePeriod": {"start": "VARCHAR", "end": "VARCHAR"}
        }') AS r
    FROM raw_medicationadministration
),
coded AS (
    SELECT src.*, rwe_fhir_codings(rwe_fhir_medication_codings(
               r.medicationCodeableConcept, r.medicationReference.reference, r.contained, med.code)) AS codings
    FROM src LEFT JOIN rwe_fhir_medications() med ON med.id = rwe_fhir_ref(r.medicationReference.reference)
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.context.reference) AS visit_ref,
        rwe_fhir_ref(r.performer[1].actor.reference) AS provider_ref,
        coalesce(rwe_text(r.effectiveDateTime), rwe_text(r.effectivePeriod.start)) AS start_text,
        rwe_text(r.effectivePeriod."end") AS end_text
    FROM coded
)
SELECT
    $source AS source_system,
    'MedicationAdministration/' || rwe_text(resource_id) AS record_key,
    'medicationadministration' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'drug' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    rwe_ts_end(start_text, end_text) AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.medicationCodeableConcept.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status], [{'code': 'not-done', 'reason': 'NOT_DONE'}]),
        rwe_fhir_event_failure('subject', person_ref, 'medicationCodeableConcept', coding.code,
                               'effective[x]', start_text, 'effectivePeriod.end', end_text)
    ) AS _failure
FROM picked
