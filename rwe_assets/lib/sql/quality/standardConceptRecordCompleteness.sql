-- standardConceptRecordCompleteness (FIELD): records whose standard concept field is 0 (no matching
-- concept), out of all records.
SELECT count(*) FILTER (WHERE {field} = 0) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table}
