-- DE-SynPUF beneficiary summary -> staging.enrollment: per beneficiary-year row, the spans of
-- consecutive enrolled months with one plan.
--
-- Year: the YEAR column where the file has one, else the year in the file name
-- (DE1_0_2009_Beneficiary_Summary_File_...). Months: with the monthly columns (the generator's, as CMS
-- MBSF files have them) a month is enrolled when MDCR_ENTLMT_BUYIN_IND_mm is set and not 0, its plan
-- is PTD_CNTRCT_ID_mm (0 or blank: none). Without them (real DE-SynPUF), the row gives the year's first
-- n months, n the largest of its coverage month counts (Part A, Part B, HMO, Part D), as ETL-CMS
-- counts months. A month change of plan starts a new span; a death ends the span on the death date.
-- A row with no enrolled month is quarantined (NO_ENROLLED_MONTH): it says the person was not covered.
--
-- How: each row is worked on as one row of lists (no unpivot, no window over the file). The monthly
-- columns are matched by name (month mm from the name, any column order); a month both of whose
-- columns are NULL is no month (as an unpivot drops NULLs), so the months before and after it are
-- adjacent. "With monthly columns" means: some month of the row has a buy-in indicator that is not
-- blank. A span is a run of adjacent enrolled months with the same plan: it opens on an enrolled month
-- whose previous month is not enrolled or has another plan, and closes on an enrolled month whose next
-- month does not continue it (the last month, a month not enrolled, or one that opens a new span).
WITH layout AS (
    -- One row: the months of the monthly columns, in month order, each with the position of its
    -- buy-in and plan column in [*COLUMNS(...)] below (NULL when the table has no such column).
    SELECT list({'month': month, 'b': b, 'p': p} ORDER BY month) AS months
    FROM (
        SELECT CAST(right(name, 2) AS INTEGER) AS month,
               max(CASE WHEN upper(name) LIKE 'MDCR%' THEN i END) AS b,
               max(CASE WHEN upper(name) LIKE 'PTD%' THEN i END) AS p
        FROM (SELECT unnest(names) AS name, generate_subscripts(names, 1) AS i
              FROM (SELECT struct_keys(struct_pack(*COLUMNS('^(MDCR_ENTLMT_BUYIN_IND|PTD_CNTRCT_ID)_[0-9]{2}$')))
                           AS names
                    FROM raw_beneficiary_summary LIMIT 1))
        GROUP BY ALL
    )
),
bene AS (
    SELECT * EXCLUDE (monthly),
           coalesce(TRY_CAST(rwe_text(YEAR) AS INTEGER),
                    TRY_CAST(regexp_extract(_source_file, '([0-9]{4})_Beneficiary_Summary', 1) AS INTEGER)) AS _year,
           greatest(coalesce(rwe_num(BENE_HI_CVRAGE_TOT_MONS), 0), coalesce(rwe_num(BENE_SMI_CVRAGE_TOT_MONS), 0),
                    coalesce(rwe_num(BENE_HMO_CVRAGE_TOT_MONS), 0), coalesce(rwe_num(PLAN_CVRG_MOS_NUM), 0)) AS _counted,
           -- the months present (some column not NULL): buy-in text, plan (blank or 0: none)
           list_transform(
               list_filter(l.months, m -> monthly[m.b] IS NOT NULL OR monthly[m.p] IS NOT NULL),
               m -> {'month': m.month, 'buyin': rwe_text(monthly[m.b]), 'contract': nullif(rwe_text(monthly[m.p]), '0')}
           ) AS _months
    FROM (SELECT *, [*COLUMNS('^(MDCR_ENTLMT_BUYIN_IND|PTD_CNTRCT_ID)_[0-9]{2}$')] AS monthly
          FROM raw_beneficiary_summary) r
    CROSS JOIN layout l
),
enrolled AS (  -- per month present: enrolled or not, and its plan
    SELECT *, list_transform(_months, m -> {'month': m.month, 'contract': m.contract,
               'enrolled': CASE WHEN list_bool_or(list_transform(_months, x -> x.buyin IS NOT NULL))
                                THEN coalesce(m.buyin, '0') <> '0' ELSE m.month <= _counted END}) AS _m
    FROM bene
),
opened AS (  -- per month: whether it opens a span
    SELECT *, list_transform(range(1, len(_m) + 1), i -> _m[i].enrolled AND NOT coalesce(
                   i > 1 AND _m[i - 1].enrolled AND _m[i - 1].contract IS NOT DISTINCT FROM _m[i].contract, false))
              AS _opens
    FROM enrolled
),
bounded AS (  -- the months that open a span and those that close one, in order: the k-th of each pair up
    SELECT *, list_filter(range(1, len(_m) + 1), i -> _opens[i]) AS _starts,
              list_filter(range(1, len(_m) + 1), i -> _m[i].enrolled
                          AND (i = len(_m) OR NOT _m[i + 1].enrolled OR _opens[i + 1])) AS _ends
    FROM opened
),
spanned AS (  -- one row per span; a row with none keeps one row whose span is NULL
    SELECT b.*, unnest(CASE WHEN len(_starts) > 0
        THEN list_transform(range(1, len(_starts) + 1), k -> {
            'first_month': _m[_starts[k]].month, 'last_month': _m[_ends[k]].month, 'contract': _m[_starts[k]].contract})
        ELSE [NULL] END) AS s
    FROM bounded b
)
SELECT
    $source AS source_system,
    -- the beneficiary-year row is the source record (its spans are parts: '#'), so a corrected year
    -- replaces all of that year's spans (lib/staging/lifecycle.py)
    rwe_text(DESYNPUF_ID) || '|' || _year || '#' || coalesce(s.first_month, 0) AS record_key,
    'beneficiary_summary' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    make_date(_year, s.first_month, 1) AS start_date,
    least(last_day(make_date(_year, s.last_month, 1)), rwe_date(BENE_DEATH_DT)) AS end_date,
    'Medicare' AS payer_source_value,
    s.contract AS plan_source_value,
    rwe_first_failure([
        {'reason': 'MISSING_PERSON', 'field': 'DESYNPUF_ID', 'failed': rwe_text(DESYNPUF_ID) IS NULL},
        {'reason': 'MISSING_YEAR', 'field': 'YEAR', 'failed': _year IS NULL},
        {'reason': 'INVALID_NUMBER', 'field': 'PLAN_CVRG_MOS_NUM', 'failed': rwe_bad_num(PLAN_CVRG_MOS_NUM)},
        {'reason': 'NO_ENROLLED_MONTH', 'field': 'MDCR_ENTLMT_BUYIN_IND_01', 'failed': s IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BENE_DEATH_DT', 'failed': rwe_bad_date(BENE_DEATH_DT)},
        {'reason': 'DEATH_BEFORE_ENROLLMENT', 'field': 'BENE_DEATH_DT',
         'failed': rwe_date(BENE_DEATH_DT) < make_date(_year, s.first_month, 1)}
    ]) AS _failure
FROM spanned
