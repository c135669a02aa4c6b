-- plausibleStartBeforeEnd (FIELD): records whose start (the field) is after their end (the catalogue's
-- plausibleStartBeforeEndFieldName), out of the records where both are non-NULL. Both sides are compared
-- as TIMESTAMP when both are datetimes, else as DATE (by day).
SELECT count(*) FILTER (WHERE CAST({field} AS {compare_type}) > CAST({end_field} AS {compare_type}))
           AS num_violated_rows,
       count(*) FILTER (WHERE {field} IS NOT NULL AND {end_field} IS NOT NULL) AS num_denominator_rows
FROM {table}
