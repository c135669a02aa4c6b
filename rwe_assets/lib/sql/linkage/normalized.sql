-- lk_pii (staging.person_pii columns) -> lk_normalized: one row per source record, every field
-- normalized by the macros of normalize.sql (NULL where missing, placeholder or impossible).
-- part_year, part_month: what a partial birth date (no full date) still tells; tokens.sql uses them
-- only where dob is NULL.
-- ids: the record's typed identifiers, normalized (normalize.sql: lk_id_type, lk_id_system, lk_id_value),
-- distinct: staged `identifiers`, plus the drivers_license / passport columns (issuer unknown) for a
-- type the list lacks (inputs without `identifiers`). A record number without a system is dropped (an
-- MRN means nothing without its assigning authority); the US SSN is left to the ssn column (its own
-- comparison and deterministic rule), which it fills when that is empty. A us-ssn national id (or ssn
-- column) whose digits are not nine is no SSN but still a national number (a 7-digit social security
-- id of another country): it stays a national_id, compared as documents are, not dropped.
-- given_forms: the full names the call name may stand for (Bob -> robert; Chris -> christopher,
-- christine, ...) plus the name itself; given_canon is the first of them, for blocking keys.
CREATE OR REPLACE TEMP TABLE lk_normalized AS
WITH base AS (
    SELECT
        source_system || '|' || source_person_id AS record_id,
        source_system, source_person_id, CAST(_batch_id AS VARCHAR) AS batch_id,
        lk_given(given_name) AS given,
        lk_first_word(given_name) AS given_first,
        lk_name(family_name) AS family,
        lk_soundex(lk_name(family_name)) AS family_sdx,
        lk_name(maiden_name) AS maiden,
        lk_date(birth_date, CAST($today AS DATE)) AS dob,
        -- a partial birth date: staging keeps birth_year, birth_month when the full date is unknown:
        -- an impossible ISO date (1837-01-00, 1849-17-28: no such day or month) still tells its year,
        -- and its month when that is one (a valid date that is a placeholder is not read here)
        coalesce(TRY_CAST(birth_year AS INTEGER), CASE WHEN TRY_CAST(birth_date AS DATE) IS NULL
            THEN TRY_CAST(regexp_extract(CAST(birth_date AS VARCHAR), '^\s*(\d{4})-\d{2}-\d{2}\s*$', 1) AS INTEGER) END)
            AS raw_year,
        coalesce(TRY_CAST(birth_month AS INTEGER), CASE WHEN TRY_CAST(birth_date AS DATE) IS NULL
            THEN TRY_CAST(regexp_extract(CAST(birth_date AS VARCHAR), '^\s*\d{4}-(\d{2})-\d{2}\s*$', 1) AS INTEGER) END)
            AS raw_month,
        lk_sex(sex) AS sex,
        lk_ssn(ssn) AS ssn, CAST(ssn AS VARCHAR) AS raw_ssn,
        identifiers AS raw_identifiers, drivers_license AS raw_licence, passport AS raw_passport,
        lk_phone(phone) AS phone,
        lk_street(address_line) AS street,
        lk_zip(zip) AS zip,
        lk_city(city) AS city,
        lk_email(email) AS email
    FROM lk_pii
    WHERE source_system IS NOT NULL AND source_person_id IS NOT NULL
),
id_in AS (  -- every identifier of a record, one row each; from_list: staged in `identifiers`
    SELECT record_id, i.type, i.system, i.value, true AS from_list
    FROM (SELECT record_id, unnest(raw_identifiers) AS i FROM base)
    UNION ALL SELECT record_id, 'drivers_license', NULL, raw_licence, false FROM base WHERE raw_licence IS NOT NULL
    UNION ALL SELECT record_id, 'passport', NULL, raw_passport, false FROM base WHERE raw_passport IS NOT NULL
    UNION ALL SELECT record_id, 'national_id', 'us-ssn', raw_ssn, false FROM base WHERE raw_ssn IS NOT NULL
),
id_norm AS (
    SELECT record_id, type, lk_id_system(system) AS system, lk_id_value(type, value) AS value, from_list,
           bool_or(from_list) OVER (PARTITION BY record_id, type) AS type_listed
    FROM (SELECT record_id, lk_id_type(type) AS type, system, value, from_list FROM id_in)
),
ids AS (
    SELECT record_id,
        list(DISTINCT {'type': type, 'system': system, 'value': value}) FILTER (
            WHERE (from_list OR NOT type_listed) AND (system IS NOT NULL OR lk_id_document(type))
            AND (coalesce(system, '') <> 'us-ssn' OR length(regexp_replace(value, '[^0-9]', '', 'g')) <> 9)) AS ids,
        min(lk_ssn(value)) FILTER (WHERE type = 'national_id' AND system = 'us-ssn') AS id_ssn
    FROM id_norm WHERE value IS NOT NULL GROUP BY record_id
),
forms AS (
    SELECT b.given_first, list_sort(list_distinct(list(f.full_name) || [b.given_first])) AS given_forms
    FROM (SELECT DISTINCT given_first FROM base WHERE given_first IS NOT NULL) b
    LEFT JOIN lk_forms f ON f.name = b.given_first
    GROUP BY b.given_first
)
SELECT base.* EXCLUDE (raw_year, raw_month, ssn, raw_ssn, raw_identifiers, raw_licence, raw_passport),
       coalesce(base.ssn, ids.id_ssn) AS ssn, nullif(ids.ids, []) AS ids,
       CASE WHEN raw_year BETWEEN 1000 AND year(CAST($today AS DATE)) THEN raw_year END AS part_year,
       CASE WHEN raw_year BETWEEN 1000 AND year(CAST($today AS DATE)) AND raw_month BETWEEN 1 AND 12
            THEN raw_month END AS part_month,
       forms.given_forms,
       coalesce(list_filter(forms.given_forms, n -> n <> base.given_first)[1], base.given_first) AS given_canon,
       nullif(maiden, family) AS other_family, lk_email_user(email) AS email_user
FROM base LEFT JOIN forms USING (given_first) LEFT JOIN ids USING (record_id)
