-- sourceConceptRecordCompleteness (FIELD): records whose source concept field is 0, out of all records.
SELECT count(*) FILTER (WHERE {field} = 0) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table}
