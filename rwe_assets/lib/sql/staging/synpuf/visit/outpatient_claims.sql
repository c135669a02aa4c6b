-- DE-SynPUF outpatient (institutional) claims -> staging.visit (visit_class outpatient_claim), one per
-- claim segment, CLM_FROM_DT to CLM_THRU_DT. provider_key: the attending NPI; care_site_key: PRVDR_NUM.
SELECT
    $source AS source_system,
    synpuf_claim_key('outpatient_claims', CLM_ID, SEGMENT) AS record_key,
    'outpatient_claims' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    'outpatient_claim' AS visit_class,
    rwe_ts(CLM_FROM_DT) AS start_datetime,
    rwe_ts(CLM_THRU_DT) AS end_datetime,
    NULL AS code,
    NULL AS vocabulary_id,
    'outpatient claim' AS source_value,
    synpuf_npi(AT_PHYSN_NPI) AS provider_key,
    rwe_text(PRVDR_NUM) AS care_site_key,
    'outpatient' AS claim_type,
    synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD) AS _failure
FROM raw_outpatient_claims
