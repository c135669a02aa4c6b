-- Synthea payer_transitions.csv -> staging.enrollment, one row per transition (a span with one payer).
-- Both layouts (_optional_columns.csv): START_YEAR/END_YEAR (a bare year: Jan 1 to Dec 31; Synthea 3.0
-- writes timestamps under these names) and START_DATE/END_DATE (Synthea 3.1+). payer_source_value is
-- the PAYER id (payers.csv names it); Synthea names no plan, so plan_source_value is NULL (OWNERSHIP
-- says who holds the policy, not which plan). MEMBERID, SECONDARY_PAYER and the owner's name are not
-- staged. A span with the NO_INSURANCE payer (named so in payers.csv) says the person was not covered:
-- quarantined as NOT_INSURED. A death ends the span on the death date (patients.csv DEATHDATE: the
-- latest a batch states; the years run to Dec 31 otherwise); a span starting after death is
-- DEATH_BEFORE_ENROLLMENT. The CDM merges the spans into PAYER_PLAN_PERIOD by days (payer_plan_period.sql).
WITH deaths AS (
    SELECT rwe_text(Id) AS person, max(rwe_date(DEATHDATE)) AS death_date
    FROM raw_patients WHERE rwe_date(DEATHDATE) IS NOT NULL GROUP BY 1
)
SELECT
    $source AS source_system,
    rwe_csv_natural_key('payer_transitions', PATIENT, PAYER, NULL, coalesce(rwe_text(START_DATE), rwe_text(START_YEAR)))
        AS record_key, true AS _natural_key,
    'payer_transitions' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_text(PATIENT) AS source_person_id,
    rwe_csv_coverage_date(coalesce(rwe_text(START_DATE), rwe_text(START_YEAR)), false) AS start_date,
    least(rwe_csv_coverage_date(coalesce(rwe_text(END_DATE), rwe_text(END_YEAR)), true), d.death_date) AS end_date,
    rwe_text(PAYER) AS payer_source_value,
    NULL AS plan_source_value,
    rwe_first_failure([
        {'reason': 'MISSING_PERSON', 'field': 'PATIENT', 'failed': rwe_text(PATIENT) IS NULL},
        {'reason': 'MISSING_PAYER', 'field': 'PAYER', 'failed': rwe_text(PAYER) IS NULL},
        {'reason': 'NOT_INSURED', 'field': 'PAYER',
         'failed': rwe_text(PAYER) IN (SELECT rwe_text(Id) FROM raw_payers WHERE rwe_text(NAME) = 'NO_INSURANCE')},
        {'reason': 'INVALID_DATE', 'field': CASE WHEN rwe_text(START_DATE) IS NOT NULL THEN 'START_DATE' ELSE 'START_YEAR' END,
         'failed': rwe_csv_coverage_date(coalesce(rwe_text(START_DATE), rwe_text(START_YEAR)), false) IS NULL},
        {'reason': 'INVALID_DATE', 'field': CASE WHEN rwe_text(END_DATE) IS NOT NULL THEN 'END_DATE' ELSE 'END_YEAR' END,
         'failed': rwe_csv_coverage_date(coalesce(rwe_text(END_DATE), rwe_text(END_YEAR)), true) IS NULL},
        {'reason': 'END_BEFORE_START', 'field': CASE WHEN rwe_text(END_DATE) IS NOT NULL THEN 'END_DATE' ELSE 'END_YEAR' END,
         'failed': rwe_csv_coverage_date(coalesce(rwe_text(END_DATE), rwe_text(END_YEAR)), true)
                   < rwe_csv_coverage_date(coalesce(rwe_text(START_DATE), rwe_text(START_YEAR)), false)},
        {'reason': 'DEATH_BEFORE_ENROLLMENT', 'field': CASE WHEN rwe_text(START_DATE) IS NOT NULL THEN 'START_DATE' ELSE 'START_YEAR' END,
         'failed': d.death_date < rwe_csv_coverage_date(coalesce(rwe_text(START_DATE), rwe_text(START_YEAR)), false)}
    ]) AS _failure
FROM raw_payer_transitions LEFT JOIN deaths d ON d.person = rwe_text(PATIENT)
