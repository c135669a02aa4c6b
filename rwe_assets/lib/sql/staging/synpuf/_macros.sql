-- Macros and configuration of the synpuf profile (CMS DE-SynPUF layout), created before its SQL files
-- run (lib/staging/build.py). The README beside this file states every rule.

-- ICD-10-CM and ICD-10-PCS replaced ICD-9-CM on US claims for services from 2015-10-01.
CREATE OR REPLACE MACRO synpuf_icd10_from() AS DATE '2015-10-01';

-- Code shapes, dotless as claims carry them. ICD-9-CM: 3-5 digits, V + 2-4 digits, E + 3-4 digits;
-- ICD-10-CM: a letter, a digit, then 1 to 5 letters or digits.
CREATE OR REPLACE MACRO synpuf_is_icd9_dx(code) AS regexp_full_match(code, '[0-9]{3,5}|V[0-9]{2,4}|E[0-9]{3,4}');
CREATE OR REPLACE MACRO synpuf_is_icd10_dx(code) AS regexp_full_match(code, '[A-Z][0-9][0-9A-Z]{1,5}');

-- The diagnosis vocabulary: by service date; a code whose shape fits only the other revision takes
-- that one (a late-coded or back-dated claim); a code fitting neither keeps the date's vocabulary and
-- stays unmapped in the CDM (concept 0, source value kept).
CREATE OR REPLACE MACRO synpuf_dx_vocabulary(code, service_date) AS
    CASE WHEN service_date >= synpuf_icd10_from()
         THEN CASE WHEN synpuf_is_icd9_dx(code) AND NOT synpuf_is_icd10_dx(code) THEN 'ICD9CM' ELSE 'ICD10CM' END
         ELSE CASE WHEN synpuf_is_icd10_dx(code) AND NOT synpuf_is_icd9_dx(code) THEN 'ICD10CM' ELSE 'ICD9CM' END
    END;

-- The vocabulary of a code by its coding family (synpuf_code_family.coding).
CREATE OR REPLACE MACRO synpuf_vocabulary(coding, code, service_date) AS CASE coding
    WHEN 'diagnosis' THEN synpuf_dx_vocabulary(code, service_date)
    WHEN 'icd_procedure' THEN CASE WHEN service_date >= synpuf_icd10_from() THEN 'ICD10PCS' ELSE 'ICD9Proc' END
    WHEN 'hcpcs' THEN CASE WHEN regexp_full_match(code, '[0-9]{4}[0-9FTU]') THEN 'CPT4' ELSE 'HCPCS' END
    END;

-- The code as the vocabulary writes it: ICD-10-CM and ICD-9-CM with the dot after the third character
-- (after the fourth for ICD-9 E codes), ICD-9 procedures after the second; others as they are.
CREATE OR REPLACE MACRO synpuf_code(code, vocabulary) AS CASE
    WHEN vocabulary = 'ICD10CM' AND length(code) > 3 THEN code[1:3] || '.' || code[4:]
    WHEN vocabulary = 'ICD9CM' AND code[1] = 'E' AND length(code) > 4 THEN code[1:4] || '.' || code[5:]
    WHEN vocabulary = 'ICD9CM' AND code[1] <> 'E' AND length(code) > 3 THEN code[1:3] || '.' || code[4:]
    WHEN vocabulary = 'ICD9Proc' AND length(code) > 2 THEN code[1:2] || '.' || code[3:]
    ELSE code END;

-- The code columns of every claim file, by name prefix: <prefix>_1 .. <prefix>_N, any N, and the one
-- unnumbered admitting diagnosis. A diagnosis' role: the claim's (ranked: primary, secondary), a
-- carrier line's (ranked after the claim's; one that repeats a claim diagnosis or an earlier line's
-- is that diagnosis, no row of its own) or the admitting one (its own row, status 'admitting').
-- Adding a code family is a row here and the prefix in synpuf_claim_events' column pattern (both uses).
CREATE OR REPLACE TEMP TABLE synpuf_code_family AS
SELECT * FROM (VALUES
    ('ICD9_DGNS_CD', 'condition', 'diagnosis', 'claim'),
    ('ICD9_PRCDR_CD', 'procedure', 'icd_procedure', NULL),
    ('HCPCS_CD', 'procedure', 'hcpcs', NULL),
    ('LINE_ICD9_DGNS_CD', 'condition', 'diagnosis', 'line'),
    ('ADMTNG_ICD9_DGNS_CD', 'condition', 'diagnosis', 'admitting')
) AS family(prefix, event_kind, coding, diagnosis_role);

-- A void: CLM_ADJSMT_TYPE_CD '1' (cancellation, as in CMS claim feeds; absent in DE-SynPUF, where it
-- reads as blank) cancels the claim or fill sent before under the same id. VOIDED is a status reason:
-- the void is the claim's latest version and retires it from staging (lib/staging/lifecycle.py).
CREATE OR REPLACE MACRO synpuf_voided(adjustment) AS
    {'reason': 'VOIDED', 'field': 'CLM_ADJSMT_TYPE_CD', 'failed': rwe_text(adjustment) = '1'};

-- A claim's record key: the file kind, the claim id and its segment (institutional claims can have
-- several; carrier claims have none and count as segment 1).
CREATE OR REPLACE MACRO synpuf_claim_key(entity, claim_id, segment) AS
    entity || '|' || rwe_text(claim_id) || '|' || coalesce(rwe_text(segment), '1');

-- The checks every claim row makes, in order: MISSING_ID, VOIDED (synpuf_voided), MISSING_PERSON,
-- then the claim period (INVALID_DATE on CLM_FROM_DT / CLM_THRU_DT, END_BEFORE_START when the thru
-- date is before the from date).
CREATE OR REPLACE MACRO synpuf_claim_failure(claim_id, person, from_text, thru_text, adjustment) AS coalesce(
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'CLM_ID', 'failed': rwe_text(claim_id) IS NULL},
        synpuf_voided(adjustment),
        {'reason': 'MISSING_PERSON', 'field': 'DESYNPUF_ID', 'failed': rwe_text(person) IS NULL}
    ]),
    rwe_first_failure([
        {'reason': 'INVALID_DATE', 'field': 'CLM_FROM_DT', 'failed': rwe_ts(from_text) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'CLM_THRU_DT', 'failed': rwe_bad_ts(thru_text)},
        {'reason': 'END_BEFORE_START', 'field': 'CLM_THRU_DT', 'failed': rwe_ts(thru_text) < rwe_ts(from_text)}
    ]));

-- An NPI is 10 digits; anything else names no provider we could know: the key is left NULL.
CREATE OR REPLACE MACRO synpuf_npi(x) AS CASE WHEN regexp_full_match(rwe_text(x), '[0-9]{10}') THEN rwe_text(x) END;

-- The staging.event value columns claims have no source for, as one struct (see synthea_csv).
CREATE OR REPLACE MACRO rwe_synpuf_event_values(quantity := NULL, days_supply := NULL) AS {
    'value_as_number': CAST(NULL AS DOUBLE), 'value_as_string': CAST(NULL AS VARCHAR),
    'unit_source_value': CAST(NULL AS VARCHAR), 'quantity': quantity, 'days_supply': days_supply,
    'provider_key': CAST(NULL AS VARCHAR)
};

-- Every code of a claim file as one staging.event row (source_system excepted): the code columns of
-- synpuf_code_family, blanks and repeated line diagnoses dropped, diagnoses ranked by position so the
-- first one present is primary (a gap before it does not demote it; line diagnoses after the claim's;
-- the admitting diagnosis unranked). A claim with no code at all gives one row, quarantined as
-- MISSING_CODE, so every claim line is accounted for: its first column (diagnoses first, then by
-- prefix and position) that is not NULL. Each claim is worked on as one row of lists (its code
-- columns as [*COLUMNS(...)] lists them) and unnested at the end: no window over the whole file, and
-- the claim's key, dates and checks are computed once per claim, not once per code.
CREATE OR REPLACE MACRO synpuf_claim_events(raw_table, entity, claim_type) AS TABLE
WITH code_columns AS (
    -- One row: the code columns in the table's order (i indexes [*COLUMNS(...)] below), each with its
    -- field, family and position; empty_rank first, so sorting a list of them sorts by it.
    SELECT list({'empty_rank': (f.prefix <> 'ICD9_DGNS_CD', f.prefix, c.position, c.i),
                 'i': c.i, 'field': upper(c.column_name), 'is_diagnosis': f.coding = 'diagnosis',
                 'role': f.diagnosis_role, 'event_kind': f.event_kind, 'coding': f.coding,
                 'position': c.position}) AS columns
    FROM (
        SELECT *, TRY_CAST(regexp_extract(column_name, '_([0-9]+)$', 1) AS INTEGER) AS position
        FROM (SELECT unnest(names) AS column_name, generate_subscripts(names, 1) AS i
              FROM (SELECT struct_keys(struct_pack(*COLUMNS('^((ICD9_DGNS_CD|ICD9_PRCDR_CD|HCPCS_CD|LINE_ICD9_DGNS_CD)_[0-9]+|ADMTNG_ICD9_DGNS_CD)$')))
                           AS names
                    FROM query_table(raw_table) LIMIT 1))
    ) c
    JOIN synpuf_code_family f
      ON f.prefix = upper(coalesce(nullif(regexp_extract(c.column_name, '^(.*)_[0-9]+$', 1), ''), c.column_name))
),
claims AS (
    -- Per claim: its code columns with their value (a NULL value is no column: as UNPIVOT drops it),
    -- dotless code (NULL when blank), and what every row of the claim shares.
    SELECT _source_file, _line_number, _batch_id, _ingested_at,
           synpuf_claim_key(entity, CLM_ID, SEGMENT) AS claim_key,
           rwe_text(DESYNPUF_ID) AS source_person_id,
           rwe_ts(CLM_FROM_DT) AS start_datetime,
           rwe_ts(CLM_THRU_DT) AS end_datetime,
           synpuf_claim_failure(CLM_ID, DESYNPUF_ID, CLM_FROM_DT, CLM_THRU_DT, CLM_ADJSMT_TYPE_CD) AS claim_failure,
           list_filter(list_transform(k.columns, c -> struct_insert(c, raw := r.raw_codes[c.i],
                   dotless := upper(replace(rwe_text(r.raw_codes[c.i]), '.', '')))), c -> c.raw IS NOT NULL) AS columns
    FROM (SELECT *, [*COLUMNS('^((ICD9_DGNS_CD|ICD9_PRCDR_CD|HCPCS_CD|LINE_ICD9_DGNS_CD)_[0-9]+|ADMTNG_ICD9_DGNS_CD)$')] AS raw_codes
          FROM query_table(raw_table)) r
    CROSS JOIN code_columns k
),
claim_codes AS (
    -- The claim's own diagnosis codes and its lines' (with their position), to find the line
    -- diagnoses that repeat one of them.
    SELECT *,
           list_transform(list_filter(columns, c -> c.role = 'claim' AND c.dotless IS NOT NULL), c -> c.dotless)
               AS claim_dx,
           list_transform(list_filter(columns, c -> c.role = 'line' AND c.dotless IS NOT NULL),
                          c -> {'position': c.position, 'dotless': c.dotless}) AS line_dx
    FROM claims
),
distinct_facts AS (
    -- A line diagnosis that repeats a claim diagnosis or a lower-numbered line's is the same fact: it
    -- is recorded by that row (its record key), so it is dropped here, as a blank column is.
    SELECT * EXCLUDE (columns, claim_dx, line_dx),
           list_filter(columns, c -> c.role IS DISTINCT FROM 'line' OR c.dotless IS NULL
               OR (NOT list_contains(claim_dx, c.dotless)
                   AND len(list_filter(line_dx, l -> l.dotless = c.dotless AND l.position < c.position)) = 0))
               AS columns
    FROM claim_codes
),
kept AS (
    -- The codes present, else the claim's first column; and the ranked diagnoses present (the claim's
    -- in position order, column order breaking a tie, then the lines'), whose first is primary.
    SELECT * EXCLUDE (columns),
           unnest(coalesce(nullif(list_filter(columns, c -> c.dotless IS NOT NULL), []),
                           list_slice(list_sort(columns), 1, 1))) AS code,
           list_sort(list_transform(
               list_filter(columns, c -> c.role IN ('claim', 'line') AND c.dotless IS NOT NULL),
               c -> {'line': c.role = 'line', 'position': c.position, 'i': c.i})) AS diagnoses
    FROM distinct_facts
),
coded AS (
    SELECT *, synpuf_vocabulary(code.coding, code.dotless, start_datetime::DATE) AS vocabulary,
           CASE WHEN code.role IN ('claim', 'line') AND code.dotless IS NOT NULL
                THEN list_position(diagnoses, {'line': code.role = 'line', 'position': code.position, 'i': code.i})
                END AS diagnosis_rank
    FROM kept
)
SELECT
    claim_key || '#' || code.field AS record_key,
    entity AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    code.event_kind AS event_kind,
    source_person_id,
    claim_key AS visit_key,
    start_datetime,
    end_datetime,
    synpuf_code(code.dotless, vocabulary) AS code,
    vocabulary AS vocabulary_id,
    NULL AS code_description,
    unnest(rwe_synpuf_event_values()),
    claim_type AS claim_type,
    CASE WHEN code.role = 'admitting' AND code.dotless IS NOT NULL THEN 'admitting'
         WHEN diagnosis_rank = 1 THEN 'primary' WHEN diagnosis_rank > 1 THEN 'secondary' END AS condition_status,
    coalesce(
        claim_failure,
        rwe_first_failure([{'reason': 'MISSING_CODE', 'field': code.field, 'failed': code.dotless IS NULL}])
    ) AS _failure
FROM coded;
