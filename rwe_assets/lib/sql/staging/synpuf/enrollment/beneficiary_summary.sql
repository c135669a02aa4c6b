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
WITH bene AS (
    SELECT *,
           coalesce(TRY_CAST(rwe_text(YEAR) AS INTEGER),
                    TRY_CAST(regexp_extract(_source_file, '([0-9]{4})_Beneficiary_Summary', 1) AS INTEGER)) AS _year,
           greatest(coalesce(rwe_num(BENE_HI_CVRAGE_TOT_MONS), 0), coalesce(rwe_num(BENE_SMI_CVRAGE_TOT_MONS), 0),
                    coalesce(rwe_num(BENE_HMO_CVRAGE_TOT_MONS), 0), coalesce(rwe_num(PLAN_CVRG_MOS_NUM), 0)) AS _counted
    FROM raw_beneficiary_summary
),
long AS (
    UNPIVOT (SELECT _source_file, _batch_id, _line_number, COLUMNS('^(MDCR_ENTLMT_BUYIN_IND|PTD_CNTRCT_ID)_[0-9]{2}$')
             FROM raw_beneficiary_summary)
    ON COLUMNS('^(MDCR_ENTLMT_BUYIN_IND|PTD_CNTRCT_ID)_[0-9]{2}$') INTO NAME column_name VALUE value
),
months AS (
    SELECT _source_file, _batch_id, _line_number, CAST(right(column_name, 2) AS INTEGER) AS month,
           max(CASE WHEN upper(column_name) LIKE 'MDCR%' THEN rwe_text(value) END) AS buyin,
           max(CASE WHEN upper(column_name) LIKE 'PTD%' THEN nullif(rwe_text(value), '0') END) AS contract
    FROM long GROUP BY ALL
),
enrolled AS (
    SELECT m.*, b._year, b._counted,
           CASE WHEN count(m.buyin) OVER row_months > 0 THEN coalesce(m.buyin, '0') <> '0'
                ELSE m.month <= b._counted END AS is_enrolled
    FROM months m JOIN bene b USING (_source_file, _batch_id, _line_number)
    WINDOW row_months AS (PARTITION BY m._source_file, m._batch_id, m._line_number)
),
islands AS (
    SELECT *, sum(opens) OVER (PARTITION BY _source_file, _batch_id, _line_number ORDER BY month) AS span
    FROM (SELECT *, CASE WHEN is_enrolled AND NOT coalesce(
                        lag(is_enrolled) OVER w AND lag(contract) OVER w IS NOT DISTINCT FROM contract, false)
                    THEN 1 ELSE 0 END AS opens
          FROM enrolled WINDOW w AS (PARTITION BY _source_file, _batch_id, _line_number ORDER BY month))
),
spans AS (
    SELECT _source_file, _batch_id, _line_number, span, min(month) AS first_month, max(month) AS last_month,
           any_value(contract) AS contract
    FROM islands WHERE is_enrolled GROUP BY ALL
)
SELECT
    $source AS source_system,
    rwe_text(b.DESYNPUF_ID) || '|' || b._year || '|' || coalesce(s.first_month, 0) AS record_key,
    'beneficiary_summary' AS _source_entity, b._source_file, b._line_number, b._batch_id, b._ingested_at,
    rwe_text(b.DESYNPUF_ID) AS source_person_id,
    make_date(b._year, s.first_month, 1) AS start_date,
    least(last_day(make_date(b._year, s.last_month, 1)), rwe_date(b.BENE_DEATH_DT)) AS end_date,
    'Medicare' AS payer_source_value,
    s.contract AS plan_source_value,
    rwe_first_failure([
        {'reason': 'MISSING_PERSON', 'field': 'DESYNPUF_ID', 'failed': rwe_text(b.DESYNPUF_ID) IS NULL},
        {'reason': 'MISSING_YEAR', 'field': 'YEAR', 'failed': b._year IS NULL},
        {'reason': 'INVALID_NUMBER', 'field': 'PLAN_CVRG_MOS_NUM', 'failed': rwe_bad_num(b.PLAN_CVRG_MOS_NUM)},
        {'reason': 'NO_ENROLLED_MONTH', 'field': 'MDCR_ENTLMT_BUYIN_IND_01', 'failed': s.span IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BENE_DEATH_DT', 'failed': rwe_bad_date(b.BENE_DEATH_DT)},
        {'reason': 'DEATH_BEFORE_ENROLLMENT', 'field': 'BENE_DEATH_DT',
         'failed': rwe_date(b.BENE_DEATH_DT) < make_date(b._year, s.first_month, 1)}
    ]) AS _failure
FROM bene b
LEFT JOIN spans s USING (_source_file, _batch_id, _line_number)
