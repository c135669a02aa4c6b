-- Synthea medications.csv -> staging.cost, one row per prescription, linked to its drug event.
-- total_charge = total_cost = TOTALCOST (BASE_COST per dispense x DISPENSES), paid_by_payer =
-- PAYER_COVERAGE, paid_by_patient = the rest (as OHDSI ETL-Synthea maps them).
-- Key: the event's natural key (event/medications.sql); the framework then gives the row the record key
-- of the event staged from the same line, `<key>#2` included (lifecycle.inherit_event_keys). The
-- event's checks come first: a quarantined event's money is quarantined with the same reason.
WITH lines AS (
    SELECT *,
        rwe_csv_natural_key('medications', PATIENT, ENCOUNTER, CODE, START) AS _key,
        rwe_csv_medication_failure(PATIENT, CODE, START, STOP, DISPENSES) AS _event_failure
    FROM raw_medications
)
SELECT
    $source AS source_system,
    _key AS record_key, true AS _natural_key,
    'medications' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(PATIENT) AS source_person_id,
    NULL AS visit_key,
    _key AS event_key,
    rwe_date(START) AS cost_date,
    rwe_num(TOTALCOST) AS total_charge,
    rwe_num(TOTALCOST) AS total_cost,
    rwe_num(PAYER_COVERAGE) AS paid_by_payer,
    rwe_csv_patient_share(TOTALCOST, PAYER_COVERAGE) AS paid_by_patient,
    coalesce(
        _event_failure,
        rwe_first_failure([{'reason': 'NO_AMOUNT', 'field': 'TOTALCOST', 'failed': rwe_text(TOTALCOST) IS NULL}]),
        rwe_amount_failure('TOTALCOST', TOTALCOST),
        rwe_amount_failure('PAYER_COVERAGE', PAYER_COVERAGE)
    ) AS _failure
FROM lines
