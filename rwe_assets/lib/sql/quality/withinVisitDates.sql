-- withinVisitDates (FIELD): records linked to a visit occurrence whose date (by day) is more than
-- $window_days days before the visit's start or after its end (its start when the end is missing), out
-- of the linked records with a non-NULL value.
SELECT count(*) FILTER (
           WHERE CAST(t.{field} AS DATE) < v.visit_start_date - CAST($window_days AS INTEGER)
              OR CAST(t.{field} AS DATE) > coalesce(v.visit_end_date, v.visit_start_date) + CAST($window_days AS INTEGER)
       ) AS num_violated_rows,
       count(*) FILTER (WHERE t.{field} IS NOT NULL) AS num_denominator_rows
FROM {table} AS t
JOIN {visit_occurrence} AS v ON v.visit_occurrence_id = t.visit_occurrence_id
