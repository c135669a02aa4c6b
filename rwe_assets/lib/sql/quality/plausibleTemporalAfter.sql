-- plausibleTemporalAfter (FIELD): records whose value is earlier than the reference field (same record,
-- or the person's record when the reference lives in another table such as PERSON.birth_datetime),
-- out of the records where both are non-NULL. Both sides are compared as TIMESTAMP when both are
-- datetimes, else as DATE (by day). The join to the reference table is left out when it is the same table.
SELECT count(*) FILTER (WHERE CAST(t.{field} AS {compare_type}) < CAST({after} AS {compare_type}))
           AS num_violated_rows,
       count(*) FILTER (WHERE t.{field} IS NOT NULL AND {after} IS NOT NULL) AS num_denominator_rows
FROM {table} AS t {after_join}
