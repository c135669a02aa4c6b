-- DE-SynPUF prescription drug events -> staging.cost, one row per fill, linked to its drug event.
-- total_cost TOT_RX_CST_AMT (the fill's gross cost), paid_by_patient PTNT_PAY_AMT, paid_by_payer the
-- rest (NULL when the patient paid more than the total: DE-SynPUF amounts disagree at times, and we do
-- not invent a split); total_paid = total_cost. A negative amount is quarantined (NEGATIVE_AMOUNT).
SELECT
    $source AS source_system,
    'prescription_drug_events|' || rwe_text(PDE_ID) || '#cost' AS record_key,
    'prescription_drug_events' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    NULL AS visit_key,
    'prescription_drug_events|' || rwe_text(PDE_ID) AS event_key,
    rwe_date(SRVC_DT) AS cost_date,
    NULL AS total_charge,
    rwe_num(TOT_RX_CST_AMT) AS total_cost,
    rwe_num(TOT_RX_CST_AMT) AS total_paid,
    CASE WHEN rwe_num(TOT_RX_CST_AMT) >= coalesce(rwe_num(PTNT_PAY_AMT), 0)
         THEN rwe_num(TOT_RX_CST_AMT) - coalesce(rwe_num(PTNT_PAY_AMT), 0) END AS paid_by_payer,
    rwe_num(PTNT_PAY_AMT) AS paid_by_patient,
    NULL AS paid_patient_deductible,
    NULL AS paid_patient_coinsurance,
    NULL AS paid_by_primary,
    NULL AS amount_allowed,
    NULL AS drg_source_value,
    coalesce(
        rwe_first_failure([
            {'reason': 'MISSING_ID', 'field': 'PDE_ID', 'failed': rwe_text(PDE_ID) IS NULL},
            synpuf_voided(CLM_ADJSMT_TYPE_CD),
            {'reason': 'MISSING_PERSON', 'field': 'DESYNPUF_ID', 'failed': rwe_text(DESYNPUF_ID) IS NULL},
            {'reason': 'INVALID_DATE', 'field': 'SRVC_DT', 'failed': rwe_ts(SRVC_DT) IS NULL}
        ]),
        rwe_amount_failure('PTNT_PAY_AMT', PTNT_PAY_AMT),
        rwe_amount_failure('TOT_RX_CST_AMT', TOT_RX_CST_AMT)
    ) AS _failure
FROM raw_prescription_drug_events
