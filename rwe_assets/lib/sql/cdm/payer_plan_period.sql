-- Staged enrollment of linked persons -> PAYER_PLAN_PERIOD.
--
-- Rule: enrollment is counted in calendar months. Every staged span is cut into its months; a month
-- several spans claim (a re-sent year, a person enrolled under two member ids, overlapping files) keeps
-- the span of the latest ingest, then the latest batch, then the smallest plan value: overlaps are
-- resolved, never doubled. Consecutive months with the same payer and plan are one period (contiguous
-- months merge, across years too); a change of plan, or a month without enrollment, starts a new one.
-- A period runs from the first day its first span covers to the last day its last span covers (a
-- death ends enrollment on the death date). Nobody is enrolled before birth: yearly beneficiary files
-- count a newborn's months from January, so a span starts at the later of its start and the birth
-- date (a span wholly before birth is dropped). Concepts: 0, the payer and plan source values kept
-- (DE-SynPUF names Medicare and Part D contract ids, for which the bundled vocabulary has no concepts).
CREATE OR REPLACE TEMP TABLE enrollment_month AS
WITH spans AS (
    SELECT x.person_id, e.* REPLACE (greatest(e.start_date, p.birth_date) AS start_date)
    FROM stg_enrollment e JOIN crosswalk x USING (source_system, source_person_id)
    JOIN (SELECT person_id, coalesce(birth_datetime::DATE,
                                     make_date(year_of_birth, coalesce(month_of_birth, 1), coalesce(day_of_birth, 1)))
                            AS birth_date
          FROM cdm.person) p ON p.person_id = x.person_id
),
months AS (
    SELECT *, unnest(generate_series(date_trunc('month', start_date), date_trunc('month', end_date),
                                     INTERVAL 1 MONTH))::DATE AS month
    FROM spans WHERE start_date <= end_date
)
SELECT person_id, month, payer_source_value, plan_source_value,
       greatest(month, start_date) AS day_from, least(last_day(month), end_date) AS day_to,
       count(*) OVER (PARTITION BY person_id, month) AS claimed_by
FROM months
QUALIFY row_number() OVER (PARTITION BY person_id, month
                           ORDER BY _ingested_at DESC, _batch_id DESC, plan_source_value NULLS LAST,
                                    source_system, record_key) = 1;

CREATE OR REPLACE TEMP TABLE payer_plan_span AS
WITH flagged AS (
    SELECT *,
           CASE WHEN lag(month) OVER w = month - INTERVAL 1 MONTH
                 AND lag(plan_source_value) OVER w IS NOT DISTINCT FROM plan_source_value
                 AND lag(payer_source_value) OVER w IS NOT DISTINCT FROM payer_source_value
                THEN 0 ELSE 1 END AS opens
    FROM enrollment_month
    WINDOW w AS (PARTITION BY person_id ORDER BY month)
),
numbered AS (
    SELECT *, sum(opens) OVER (PARTITION BY person_id ORDER BY month) AS period
    FROM flagged
)
SELECT person_id, payer_source_value, plan_source_value, min(day_from) AS start_date, max(day_to) AS end_date,
       'ppp|' || person_id || '|' || min(day_from) || '|' || coalesce(plan_source_value, '') AS natural_key
FROM numbered
GROUP BY person_id, period, payer_source_value, plan_source_value
