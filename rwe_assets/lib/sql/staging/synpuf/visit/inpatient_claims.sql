-- DE-SynPUF inpatient claims -> staging.visit, one per claim segment (visit_class inpatient_claim:
-- the CDM rollup merges contiguous segments and the matching EHR stay into one 9201 visit). The stay
-- runs from the admission date (else CLM_FROM_DT) to the discharge date (else CLM_THRU_DT).
-- provider_key: the attending physician's NPI when it is one; care_site_key: the institution (PRVDR_NUM).
SELECT
    $source AS source_system,
    synpuf_claim_key('inpatient_claims', CLM_ID, SEGMENT) AS record_key,
    'inpatient_claims' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    'inpatient_claim' AS visit_class,
    coalesce(rwe_ts(CLM_ADMSN_DT), rwe_ts(CLM_FROM_DT)) AS start_datetime,
    coalesce(rwe_ts(NCH_BENE_DSCHRG_DT), rwe_ts(CLM_THRU_DT)) AS end_datetime,
    rwe_text(CLM_DRG_CD) AS code,
    'DRG' AS vocabulary_id,
    'inpatient claim' AS source_value,
    synpuf_npi(AT_PHYSN_NPI) AS provider_key,
    rwe_text(PRVDR_NUM) AS care_site_key,
    'inpatient' AS claim_type,
    coalesce(
        synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD),
        rwe_first_failure([
            {'reason': 'INVALID_DATE', 'field': 'CLM_ADMSN_DT', 'failed': rwe_bad_ts(CLM_ADMSN_DT)},
            {'reason': 'INVALID_DATE', 'field': 'NCH_BENE_DSCHRG_DT', 'failed': rwe_bad_ts(NCH_BENE_DSCHRG_DT)},
            {'reason': 'END_BEFORE_START', 'field': 'NCH_BENE_DSCHRG_DT',
             'failed': rwe_ts(NCH_BENE_DSCHRG_DT) < coalesce(rwe_ts(CLM_ADMSN_DT), rwe_ts(CLM_FROM_DT))}
        ])
    ) AS _failure
FROM raw_inpatient_claims
