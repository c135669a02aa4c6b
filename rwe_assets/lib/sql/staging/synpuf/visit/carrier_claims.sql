-- DE-SynPUF carrier (professional) claims -> staging.visit (visit_class carrier_claim), CLM_FROM_DT
-- to CLM_THRU_DT. provider_key: the first line's performing NPI; no care site (carrier claims name none).
SELECT
    $source AS source_system,
    synpuf_claim_key('carrier_claims', CLM_ID, SEGMENT) AS record_key,
    'carrier_claims' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    'carrier_claim' AS visit_class,
    rwe_ts(CLM_FROM_DT) AS start_datetime,
    rwe_ts(CLM_THRU_DT) AS end_datetime,
    NULL AS code,
    NULL AS vocabulary_id,
    'carrier claim' AS source_value,
    synpuf_npi(PRF_PHYSN_NPI_1) AS provider_key,
    NULL AS care_site_key,
    'carrier' AS claim_type,
    synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD) AS _failure
FROM raw_carrier_claims
