-- DE-SynPUF inpatient claims -> staging.cost, one row per claim segment, linked to its visit.
-- paid_by_payer: Medicare's payment CLM_PMT_AMT; paid_by_primary: a primary payer other than Medicare
-- (NCH_PRMRY_PYR_CLM_PD_AMT); the patient's share: the inpatient deductible, Part A coinsurance and
-- blood deductible; total_paid: all of these. DE-SynPUF states no charge. A negative amount is
-- quarantined (NEGATIVE_AMOUNT): DE-SynPUF has no adjustment claims, so it is an error, not a refund.
SELECT
    $source AS source_system,
    synpuf_claim_key('inpatient_claims', CLM_ID, SEGMENT) || '#cost' AS record_key,
    'inpatient_claims' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    synpuf_claim_key('inpatient_claims', CLM_ID, SEGMENT) AS visit_key,
    NULL AS event_key,
    rwe_date(CLM_FROM_DT) AS cost_date,
    NULL AS total_charge,
    NULL AS total_cost,
    coalesce(rwe_num(CLM_PMT_AMT), 0) + coalesce(rwe_num(NCH_PRMRY_PYR_CLM_PD_AMT), 0)
        + coalesce(rwe_num(NCH_BENE_IP_DDCTBL_AMT), 0) + coalesce(rwe_num(NCH_BENE_PTA_COINSRNC_LBLTY_AM), 0)
        + coalesce(rwe_num(NCH_BENE_BLOOD_DDCTBL_LBLTY_AM), 0) AS total_paid,
    rwe_num(CLM_PMT_AMT) AS paid_by_payer,
    coalesce(rwe_num(NCH_BENE_IP_DDCTBL_AMT), 0) + coalesce(rwe_num(NCH_BENE_PTA_COINSRNC_LBLTY_AM), 0)
        + coalesce(rwe_num(NCH_BENE_BLOOD_DDCTBL_LBLTY_AM), 0) AS paid_by_patient,
    rwe_num(NCH_BENE_IP_DDCTBL_AMT) AS paid_patient_deductible,
    rwe_num(NCH_BENE_PTA_COINSRNC_LBLTY_AM) AS paid_patient_coinsurance,
    rwe_num(NCH_PRMRY_PYR_CLM_PD_AMT) AS paid_by_primary,
    NULL AS amount_allowed,
    rwe_text(CLM_DRG_CD) AS drg_source_value,
    coalesce(
        synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD),
        rwe_amount_failure('CLM_PMT_AMT', CLM_PMT_AMT),
        rwe_amount_failure('NCH_PRMRY_PYR_CLM_PD_AMT', NCH_PRMRY_PYR_CLM_PD_AMT),
        rwe_amount_failure('NCH_BENE_IP_DDCTBL_AMT', NCH_BENE_IP_DDCTBL_AMT),
        rwe_amount_failure('NCH_BENE_PTA_COINSRNC_LBLTY_AM', NCH_BENE_PTA_COINSRNC_LBLTY_AM),
        rwe_amount_failure('NCH_BENE_BLOOD_DDCTBL_LBLTY_AM', NCH_BENE_BLOOD_DDCTBL_LBLTY_AM)
    ) AS _failure
FROM raw_inpatient_claims
