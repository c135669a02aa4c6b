-- FHIR R4 SupplyDelivery -> staging.event ('device'), as the Synthea profile stages supplies.csv.
-- Codes: suppliedItem.itemCodeableConcept.coding, chosen as in _macros.sql (SNOMED CT in Synthea).
-- start: occurrenceDateTime, else occurrencePeriod.start. quantity: suppliedItem.quantity.value.
-- SupplyDelivery has no encounter: visit_key NULL. record_key: 'SupplyDelivery/<id>'.
-- Rules: id, patient, code, parseable date; quantity numeric and not negative; status
--   'entered-in-error' -> ENTERED_IN_ERROR, 'abandoned' -> NOT_DONE (never delivered).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "status": "VARCHAR",
            "patient": {"reference": "VARCHAR"},
            "suppliedItem": {"quantity": {"value": "VARCHAR"},
                             "itemCodeableConcept": {"coding": [{"system": "VARCHAR", "code": "VARCHAR",
                                                                 "display": "VARCHAR"}], "text": "VARCHAR"}},
            "occurrenceDateTime": "VARCHAR", "occurrencePeriod": {"start": "VARCHAR"}
        }') AS r
    FROM raw_supplydelivery
),
coded AS (
    SELECT *, rwe_fhir_codings(r.suppliedItem.itemCodeableConcept.coding) AS codings FROM src
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.patient.reference) AS person_ref,
        coalesce(rwe_text(r.occurrenceDateTime), rwe_text(r.occurrencePeriod.start)) AS start_text
    FROM coded
)
SELECT
    $source AS source_system,
    'SupplyDelivery/' || rwe_text(resource_id) AS record_key,
    'supplydelivery' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'device' AS event_kind,
    person_ref AS source_person_id,
    NULL AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    NULL AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.suppliedItem.itemCodeableConcept.text)) AS code_description,
    NULL AS value_as_number, NULL AS value_as_string, NULL AS unit_source_value,
    rwe_num(r.suppliedItem.quantity.value) AS quantity, NULL AS days_supply, NULL AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status], [{'code': 'abandoned', 'reason': 'NOT_DONE'}]),
        rwe_fhir_event_failure('patient', person_ref, 'suppliedItem.itemCodeableConcept', coding.code,
                               'occurrence[x]', start_text),
        rwe_first_failure([
            {'reason': 'INVALID_NUMBER', 'field': 'suppliedItem.quantity',
             'failed': rwe_bad_num(r.suppliedItem.quantity.value)},
            {'reason': 'NEGATIVE_QUANTITY', 'field': 'suppliedItem.quantity',
             'failed': rwe_num(r.suppliedItem.quantity.value) < 0}
        ])
    ) AS _failure
FROM picked
