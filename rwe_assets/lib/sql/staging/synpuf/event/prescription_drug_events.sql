-- DE-SynPUF prescription drug events -> staging.event ('drug', claim_type 'pharmacy'): the NDC in
-- PROD_SRVC_ID, quantity QTY_DSPNSD_NUM, days_supply DAYS_SUPLY_NUM. The end is left NULL: the CDM
-- ends the exposure at SRVC_DT + days_supply. No visit: a pharmacy fill is not an encounter.
SELECT
    $source AS source_system,
    'prescription_drug_events|' || rwe_text(PDE_ID) AS record_key,
    'prescription_drug_events' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'drug' AS event_kind,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    NULL AS visit_key,
    rwe_ts(SRVC_DT) AS start_datetime,
    NULL AS end_datetime,
    rwe_text(PROD_SRVC_ID) AS code,
    'NDC' AS vocabulary_id,
    NULL AS code_description,
    unnest(rwe_synpuf_event_values(
        quantity := rwe_num(QTY_DSPNSD_NUM), days_supply := TRY_CAST(rwe_num(DAYS_SUPLY_NUM) AS INTEGER))),
    'pharmacy' AS claim_type,
    NULL AS condition_status,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'PDE_ID', 'failed': rwe_text(PDE_ID) IS NULL},
        synpuf_voided(CLM_ADJSMT_TYPE_CD),
        {'reason': 'MISSING_PERSON', 'field': 'DESYNPUF_ID', 'failed': rwe_text(DESYNPUF_ID) IS NULL},
        {'reason': 'MISSING_CODE', 'field': 'PROD_SRVC_ID', 'failed': rwe_text(PROD_SRVC_ID) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'SRVC_DT', 'failed': rwe_ts(SRVC_DT) IS NULL},
        {'reason': 'INVALID_NUMBER', 'field': 'QTY_DSPNSD_NUM', 'failed': rwe_bad_num(QTY_DSPNSD_NUM)},
        {'reason': 'NEGATIVE_QUANTITY', 'field': 'QTY_DSPNSD_NUM', 'failed': rwe_num(QTY_DSPNSD_NUM) < 0},
        {'reason': 'INVALID_NUMBER', 'field': 'DAYS_SUPLY_NUM',
         'failed': rwe_bad_num(DAYS_SUPLY_NUM) OR rwe_num(DAYS_SUPLY_NUM) <> round(rwe_num(DAYS_SUPLY_NUM))},
        {'reason': 'NEGATIVE_QUANTITY', 'field': 'DAYS_SUPLY_NUM', 'failed': rwe_num(DAYS_SUPLY_NUM) < 0}
    ]) AS _failure
FROM raw_prescription_drug_events
