-- DE-SynPUF carrier claims -> staging.cost, one row per claim line n (1..13): a line exists when it has
-- a HCPCS code or a non-zero amount. A line with a code is linked to that code's event
-- (<claim>#HCPCS_CD_n), one without to the claim's visit. paid_by_payer LINE_NCH_PMT_AMT_n, deductible
-- LINE_BENE_PTB_DDCTBL_AMT_n, coinsurance LINE_COINSRNC_AMT_n, primary payer LINE_BENE_PRMRY_PYR_PD_AMT_n,
-- allowed LINE_ALOWD_CHRG_AMT_n; the patient's share is deductible + coinsurance. The line columns are
-- read as lists in their header order (1..13, as every DE-SynPUF file has them). A claim with no line
-- gives one row quarantined as NO_CLAIM_LINE. A negative amount: NEGATIVE_AMOUNT, naming its column.
-- Each claim is worked on as one row (its lines as a list, unnested at the end, no window over the
-- file); its key, date and claim checks are computed once per claim.
WITH claims AS (
    SELECT _source_file, _line_number, _batch_id, _ingested_at,
           synpuf_claim_key('carrier_claims', CLM_ID, SEGMENT) AS claim_key,
           rwe_text(DESYNPUF_ID) AS source_person_id,
           rwe_date(CLM_FROM_DT) AS cost_date,
           synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD) AS claim_failure,
           [*COLUMNS('^HCPCS_CD_[0-9]+$')] AS hcpcs, [*COLUMNS('^LINE_NCH_PMT_AMT_[0-9]+$')] AS payer,
           [*COLUMNS('^LINE_BENE_PTB_DDCTBL_AMT_[0-9]+$')] AS deductible,
           [*COLUMNS('^LINE_COINSRNC_AMT_[0-9]+$')] AS coinsurance,
           [*COLUMNS('^LINE_BENE_PRMRY_PYR_PD_AMT_[0-9]+$')] AS primary_payer,
           [*COLUMNS('^LINE_ALOWD_CHRG_AMT_[0-9]+$')] AS allowed
    FROM raw_carrier_claims
),
present AS (  -- per line n: whether it exists
    SELECT *, list_transform(range(1, len(hcpcs) + 1), n ->
               rwe_text(hcpcs[n]) IS NOT NULL OR coalesce(rwe_num(payer[n]), 0) <> 0
               OR coalesce(rwe_num(deductible[n]), 0) <> 0 OR coalesce(rwe_num(coinsurance[n]), 0) <> 0
               OR coalesce(rwe_num(primary_payer[n]), 0) <> 0 OR coalesce(rwe_num(allowed[n]), 0) <> 0) AS is_line
    FROM claims
),
numbered AS (  -- the lines that exist; a claim with none keeps its line 1 (NO_CLAIM_LINE)
    SELECT *, unnest(CASE WHEN list_bool_or(is_line) THEN list_filter(range(1, len(hcpcs) + 1), n -> is_line[n])
                          ELSE list_slice(range(1, len(hcpcs) + 1), 1, 1) END) AS n
    FROM present
),
kept AS (
    SELECT * EXCLUDE (hcpcs, payer, deductible, coinsurance, primary_payer, allowed, is_line),
           is_line[n] AS is_line, hcpcs[n] AS code, payer[n] AS pmt, deductible[n] AS ddctbl,
           coinsurance[n] AS coins, primary_payer[n] AS prmry, allowed[n] AS alowd
    FROM numbered
)
SELECT
    $source AS source_system,
    claim_key || '#cost#' || n AS record_key,
    'carrier_claims' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    source_person_id,
    CASE WHEN rwe_text(code) IS NULL THEN claim_key END AS visit_key,
    CASE WHEN rwe_text(code) IS NOT NULL THEN claim_key || '#HCPCS_CD_' || n END AS event_key,
    cost_date,
    NULL AS total_charge,
    NULL AS total_cost,
    coalesce(rwe_num(pmt), 0) + coalesce(rwe_num(ddctbl), 0) + coalesce(rwe_num(coins), 0)
        + coalesce(rwe_num(prmry), 0) AS total_paid,
    rwe_num(pmt) AS paid_by_payer,
    coalesce(rwe_num(ddctbl), 0) + coalesce(rwe_num(coins), 0) AS paid_by_patient,
    rwe_num(ddctbl) AS paid_patient_deductible,
    rwe_num(coins) AS paid_patient_coinsurance,
    rwe_num(prmry) AS paid_by_primary,
    rwe_num(alowd) AS amount_allowed,
    NULL AS drg_source_value,
    coalesce(
        claim_failure,
        rwe_first_failure([{'reason': 'NO_CLAIM_LINE', 'field': 'HCPCS_CD_1', 'failed': NOT is_line}]),
        rwe_amount_failure('LINE_NCH_PMT_AMT_' || n, pmt),
        rwe_amount_failure('LINE_BENE_PTB_DDCTBL_AMT_' || n, ddctbl),
        rwe_amount_failure('LINE_COINSRNC_AMT_' || n, coins),
        rwe_amount_failure('LINE_BENE_PRMRY_PYR_PD_AMT_' || n, prmry),
        rwe_amount_failure('LINE_ALOWD_CHRG_AMT_' || n, alowd)
    ) AS _failure
FROM kept
