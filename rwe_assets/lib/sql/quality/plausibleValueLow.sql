-- plausibleValueLow (FIELD): records whose value is below $low, out of the records with a non-NULL
-- value. The code translates the catalogue's bound ('19500101', 1850, ...) into a value of the
-- field's type; a datetime below a date bound means before that day's midnight.
SELECT count(*) FILTER (WHERE {field} < $low) AS num_violated_rows,
       count({field}) AS num_denominator_rows
FROM {table}
