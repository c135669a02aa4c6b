-- Synthea procedures.csv -> staging.cost, one row per procedure, linked to its procedure event.
-- total_charge = total_cost = BASE_COST (the line item's cost); procedures.csv states no payer split
-- (the encounter's PAYER_COVERAGE covers its whole claim, cost/encounters.sql): the paid columns are
-- NULL. Key and event checks as in cost/medications.sql.
WITH lines AS (
    SELECT *,
        rwe_csv_natural_key('procedures', PATIENT, ENCOUNTER, CODE, START) AS _key,
        rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'START', START, 'STOP', STOP) AS _event_failure
    FROM raw_procedures
)
SELECT
    $source AS source_system,
    _key AS record_key, true AS _natural_key,
    'procedures' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(PATIENT) AS source_person_id,
    NULL AS visit_key,
    _key AS event_key,
    rwe_date(START) AS cost_date,
    rwe_num(BASE_COST) AS total_charge,
    rwe_num(BASE_COST) AS total_cost,
    coalesce(
        _event_failure,
        rwe_first_failure([{'reason': 'NO_AMOUNT', 'field': 'BASE_COST', 'failed': rwe_text(BASE_COST) IS NULL}]),
        rwe_amount_failure('BASE_COST', BASE_COST)
    ) AS _failure
FROM lines
