-- measureValueCompleteness (FIELD): records with a NULL in the field, out of all records.
SELECT count(*) FILTER (WHERE {field} IS NULL) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table}
