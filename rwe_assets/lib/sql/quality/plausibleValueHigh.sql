-- plausibleValueHigh (FIELD): records whose value is above $high, out of the records with a non-NULL
-- value. The code translates the catalogue's bound (DATEADD(dd,1,GETDATE()) = tomorrow,
-- YEAR(GETDATE())+1, 365, ...) into a value of the field's type; for a datetime field a date bound
-- means the end of that day.
SELECT count(*) FILTER (WHERE {field} > $high) AS num_violated_rows,
       count({field}) AS num_denominator_rows
FROM {table}
