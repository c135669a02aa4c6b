-- Staged enrollment of linked persons -> PAYER_PLAN_PERIOD.
--
-- Rule: enrollment is resolved by days, one calendar month at a time (a span is cut into its
-- months, so the work per person grows with months, not days). Within a month, the days that several
-- spans claim (a re-sent year, a person enrolled under two member ids, overlapping files, the day a
-- new payer starts when the old one ends) keep the span of the latest ingest, then the latest batch,
-- then the one that starts later (the day of a handover is the new payer's), then the smallest plan value: overlaps are resolved, never doubled, and a mid-month change of payer
-- leaves no covered day without a period. Consecutive days with the same payer and plan are one
-- period (across months and years); a change of plan, or a day without enrollment, starts a new one.
-- A death ends enrollment on the death date. Nobody is enrolled before birth: yearly beneficiary files
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
),
claims AS (
    SELECT *, greatest(month, start_date) AS day_from, least(last_day(month), end_date) AS day_to FROM months
),
-- each month cut at every day a claiming span starts or ends after: the pieces no span boundary splits
bounds AS (
    SELECT DISTINCT person_id, month, unnest([day_from, day_to + 1]) AS piece_from FROM claims
),
pieces AS (
    SELECT person_id, month, piece_from,
           lead(piece_from) OVER (PARTITION BY person_id, month ORDER BY piece_from) - 1 AS piece_to
    FROM bounds
)
SELECT p.person_id, p.month, c.payer_source_value, c.plan_source_value,
       p.piece_from AS day_from, p.piece_to AS day_to
FROM pieces p JOIN claims c
  ON c.person_id = p.person_id AND c.month = p.month AND c.day_from <= p.piece_from AND c.day_to >= p.piece_to
QUALIFY row_number() OVER (PARTITION BY p.person_id, p.piece_from
                           ORDER BY c._ingested_at DESC, c._batch_id DESC, c.start_date DESC,
                                    c.plan_source_value NULLS LAST,
                                    c.source_system, c.record_key) = 1;

CREATE OR REPLACE TEMP TABLE payer_plan_span AS
WITH flagged AS (
    SELECT *,
           CASE WHEN lag(day_to) OVER w = day_from - 1
                 AND lag(plan_source_value) OVER w IS NOT DISTINCT FROM plan_source_value
                 AND lag(payer_source_value) OVER w IS NOT DISTINCT FROM payer_source_value
                THEN 0 ELSE 1 END AS opens
    FROM enrollment_month
    WINDOW w AS (PARTITION BY person_id ORDER BY day_from)
),
numbered AS (
    SELECT *, sum(opens) OVER (PARTITION BY person_id ORDER BY day_from) AS period
    FROM flagged
)
SELECT person_id, payer_source_value, plan_source_value, min(day_from) AS start_date, max(day_to) AS end_date,
       'ppp|' || person_id || '|' || min(day_from) || '|' || coalesce(plan_source_value, '') AS natural_key
FROM numbered
GROUP BY person_id, period, payer_source_value, plan_source_value
