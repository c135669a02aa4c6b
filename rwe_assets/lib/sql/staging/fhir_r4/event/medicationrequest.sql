-- FHIR R4 MedicationRequest -> staging.event ('drug'). Codes: medicationCodeableConcept.coding, chosen
-- as in _macros.sql (RxNorm in Synthea; NDC etc. map by system); else medicationReference resolved to a
-- contained Medication ('#id') or a Medication resource of the source (rwe_fhir_medication_codings).
-- start: authoredOn; end: dosageInstruction[1].timing.repeat.boundsPeriod.end, the end the prescriber
--   stated; else NULL (the CDM derives it from days_supply and refills, or ends it on the start day).
-- refills: dispenseRequest.numberOfRepeatsAllowed.
-- quantity: dispenseRequest.quantity.value (the amount to dispense). dosageInstruction.doseAndRate is a
--   per-administration dose, not an OMOP quantity, and is not used.
-- days_supply: dispenseRequest.expectedSupplyDuration, else dosageInstruction[1].timing.repeat.
--   boundsDuration (the duration of therapy), in days: unit d/day(s) x1, wk/week(s) x7, mo/month(s)
--   x30, no unit = days; any other unit gives no days_supply. Rounded to whole days.
-- provider_key: requester. record_key: 'MedicationRequest/<id>'.
-- Rules: id, subject, code, parseable authoredOn; quantity / supply duration numeric (INVALID_NUMBER)
--   and not negative (NEGATIVE_QUANTITY); status 'entered-in-error' -> ENTERED_IN_ERROR,
--   'cancelled' -> CANCELLED, 'draft' -> PLANNED; intent proposal/plan/option -> PLANNED (not an order).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR", "intent": "VARCHAR",
            "medicationCodeableConcept": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}],
                                          "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "requester": {"reference": "VARCHAR"}, "authoredOn": "VARCHAR",
            "medicationReference": {"reference": "VARCHAR"},
            "contained": [{"resourceType": "VARCHAR", "id": "VARCHAR",
                           "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}]}}],
            "dosageInstruction": [{"timing": {"repeat": {"boundsDuration": {"value": "VARCHAR", "unit": "VARCHAR",
                                                                            "code": "VARCHAR"},
                                                         "boundsPeriod": {"start": "VARCHAR", "end": "VARCHAR"}}}}],
            "dispenseRequest": {"quantity": {"value": "VARCHAR"}, "numberOfRepeatsAllowed": "VARCHAR",
                                "expectedSupplyDuration": {"value": "VARCHAR", "unit": "VARCHAR", "code": "VARCHAR"}}
        }') AS r
    FROM raw_medicationrequest
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
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(r.requester.reference) AS provider_ref,
        rwe_text(r.dosageInstruction[1].timing.repeat.boundsPeriod."end") AS end_text,
        CASE WHEN rwe_text(r.dispenseRequest.expectedSupplyDuration.value) IS NOT NULL
             THEN r.dispenseRequest.expectedSupplyDuration
             ELSE r.dosageInstruction[1].timing.repeat.boundsDuration END AS supply
    FROM coded
),
measured AS (
    SELECT *,
        rwe_num(supply.value) * CASE lower(coalesce(rwe_text(supply.code), rwe_text(supply.unit), 'd'))
            WHEN 'd' THEN 1 WHEN 'day' THEN 1 WHEN 'days' THEN 1
            WHEN 'wk' THEN 7 WHEN 'week' THEN 7 WHEN 'weeks' THEN 7
            WHEN 'mo' THEN 30 WHEN 'month' THEN 30 WHEN 'months' THEN 30 END AS supply_days
    FROM picked
)
SELECT
    $source AS source_system,
    'MedicationRequest/' || rwe_text(resource_id) AS record_key,
    'medicationrequest' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'drug' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(r.authoredOn) AS start_datetime,
    rwe_ts_end(r.authoredOn, end_text) AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.medicationCodeableConcept.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    rwe_num(r.dispenseRequest.quantity.value) AS quantity,
    CAST(round(supply_days) AS INTEGER) AS days_supply,
    TRY_CAST(rwe_num(r.dispenseRequest.numberOfRepeatsAllowed) AS INTEGER) AS refills,
    provider_ref AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'cancelled', 'reason': 'CANCELLED'}, {'code': 'draft', 'reason': 'PLANNED'}]),
        -- a plan or proposal is not an order: nothing was prescribed
        rwe_first_failure([{'reason': 'PLANNED', 'field': 'intent',
                            'failed': r.intent IN ('proposal', 'plan', 'option')}]),
        rwe_fhir_event_failure('subject', person_ref, 'medication[x]', coding.code,
                               'authoredOn', r.authoredOn, 'boundsPeriod.end', end_text),
        rwe_first_failure([
            {'reason': 'INVALID_NUMBER', 'field': 'dispenseRequest.quantity',
             'failed': rwe_bad_num(r.dispenseRequest.quantity.value)},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'dispenseRequest.quantity',
             'failed': rwe_num(r.dispenseRequest.quantity.value) < 0},
            {'reason': 'INVALID_NUMBER', 'field': 'expectedSupplyDuration', 'failed': rwe_bad_num(supply.value)},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'expectedSupplyDuration', 'failed': supply_days < 0},
            {'reason': 'INVALID_NUMBER', 'field': 'numberOfRepeatsAllowed',
             'failed': rwe_bad_num(r.dispenseRequest.numberOfRepeatsAllowed)
                       OR rwe_num(r.dispenseRequest.numberOfRepeatsAllowed) <> round(rwe_num(r.dispenseRequest.numberOfRepeatsAllowed))},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'numberOfRepeatsAllowed',
             'failed': rwe_num(r.dispenseRequest.numberOfRepeatsAllowed) < 0}
        ])
    ) AS _failure
FROM measured
