-- DE-SynPUF outpatient claims -> staging.event: one row per diagnosis, procedure and HCPCS/CPT code of
-- the claim, read from the repeated code columns by synpuf_claim_events (_macros.sql, rules in
-- README.md). claim_type 'outpatient'; condition_status by diagnosis position, the admitting diagnosis
-- (ADMTNG_ICD9_DGNS_CD) its own row with status 'admitting'.
SELECT $source AS source_system, *
FROM synpuf_claim_events('raw_outpatient_claims', 'outpatient_claims', 'outpatient')
