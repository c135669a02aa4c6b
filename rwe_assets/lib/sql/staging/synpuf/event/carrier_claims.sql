-- DE-SynPUF carrier claims -> staging.event: one row per diagnosis, procedure and HCPCS/CPT code of
-- the claim, read from the repeated code columns by synpuf_claim_events (_macros.sql, rules in
-- README.md). claim_type 'carrier'; condition_status by diagnosis position; line diagnoses repeating
-- another diagnosis of the claim are that diagnosis (no row of their own).
SELECT $source AS source_system, *
FROM synpuf_claim_events('raw_carrier_claims', 'carrier_claims', 'carrier')
