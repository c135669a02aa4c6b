-- measureObservationPeriodOverlap (TABLE): persons with two observation periods that overlap or are
-- back to back (one starts at most $adjacent_days day after an earlier one ends), out of the persons
-- with an observation period. Each period is compared with the latest end of the periods that start
-- before it (ties broken by end date).
SELECT count(DISTINCT person_id) FILTER (
           WHERE observation_period_start_date <= prior_end + CAST($adjacent_days AS INTEGER)
       ) AS num_violated_rows,
       count(DISTINCT person_id) AS num_denominator_rows
FROM (
    SELECT person_id,
           observation_period_start_date,
           max(observation_period_end_date) OVER (
               PARTITION BY person_id
               ORDER BY observation_period_start_date, observation_period_end_date
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS prior_end
    FROM {table}
) AS periods
