-- FHIR R4 MedicationAdministration -> staging.event ('drug'): a drug given (Synthea: inpatient
-- administrations). Codes: medicationCodeableConcept.coding, chosen as in _macros.sql (RxNorm);
-- medicationReference only -> MISSING_CODE (see medicationrequest.sql).
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
            "subject": {"reference": "VARCHAR"}, "context": {"reference": "VARCHAR"},
            "performer": [{"actor": {"reference": "VARCHAR"}}],
            "effectiveDateTime": "VARCHAR", "effectivePeriod": {"start": "VARCHAR", "end": "VARCHAR"}
        }') AS r
    FROM raw_medicationadministration
),
coded AS (
    SELECT *,
        list_filter(list_transform(r.medicationCodeableConcept.coding, c -> {
            'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
            'vocabulary_id': rwe_fhir_vocabulary(c.system)
        }), c -> c.code IS NOT NULL) AS codings
    FROM src
),
picked AS (
    SELECT *,
        coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1]) AS coding,
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
    rwe_ts(end_text) AS end_datetime,
    coding.code AS code,
    coalesce(coding.vocabulary_id, coding.system) AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.medicationCodeableConcept.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'ENTERED_IN_ERROR', 'field': 'status', 'failed': r.status = 'entered-in-error'},
        {'reason': 'NOT_DONE', 'field': 'status', 'failed': r.status = 'not-done'},
        {'reason': 'MISSING_PERSON', 'field': 'subject', 'failed': person_ref IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'medicationCodeableConcept', 'failed': coding.code IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'effective[x]', 'failed': rwe_ts(start_text) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'effectivePeriod.end', 'failed': rwe_bad_ts(end_text)},
        {'reason': 'END_BEFORE_START', 'field': 'effectivePeriod.end', 'failed': rwe_ts(end_text) < rwe_ts(start_text)}
    ]) AS _failure
FROM picked
