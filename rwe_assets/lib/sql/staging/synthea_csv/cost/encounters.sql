-- Synthea encounters.csv -> staging.cost, one row per encounter, linked to its visit (key: the Id).
-- The encounter's claim: total_charge = total_cost = TOTAL_CLAIM_COST (the encounter and all its line
-- items), paid_by_payer = PAYER_COVERAGE, paid_by_patient = the rest (as OHDSI ETL-Synthea maps them).
-- BASE_ENCOUNTER_COST (the visit's own line) is part of the total and not staged apart. The checks of
-- visit/encounters.sql come first, so a quarantined visit's money is quarantined with the same reason.
SELECT
    $source AS source_system,
    rwe_text(Id) AS record_key,
    'encounters' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(Id) AS visit_key,
    NULL AS event_key,
    rwe_date(START) AS cost_date,
    rwe_num(TOTAL_CLAIM_COST) AS total_charge,
    rwe_num(TOTAL_CLAIM_COST) AS total_cost,
    rwe_num(PAYER_COVERAGE) AS paid_by_payer,
    rwe_csv_patient_share(TOTAL_CLAIM_COST, PAYER_COVERAGE) AS paid_by_patient,
    coalesce(
        rwe_first_failure([
            {'reason': 'MISSING_ID', 'field': 'Id', 'failed': rwe_text(Id) IS NULL},
            {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL}
        ]),
        rwe_period_failure('START', START, 'STOP', STOP),
        rwe_first_failure([{'reason': 'NO_AMOUNT', 'field': 'TOTAL_CLAIM_COST', 'failed': rwe_text(TOTAL_CLAIM_COST) IS NULL}]),
        rwe_amount_failure('TOTAL_CLAIM_COST', TOTAL_CLAIM_COST),
        rwe_amount_failure('PAYER_COVERAGE', PAYER_COVERAGE)
    ) AS _failure
FROM raw_encounters
