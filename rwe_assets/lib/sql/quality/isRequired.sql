-- isRequired (FIELD): records whose required field is NULL, out of all records of the table.
SELECT count(*) FILTER (WHERE {field} IS NULL) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table}
