-- isPrimaryKey (FIELD): records whose key value occurs more than once (every record of a duplicated
-- value counts, NULL keys form one group), out of all records.
SELECT coalesce(sum(n) FILTER (WHERE n > 1), 0) AS num_violated_rows,
       coalesce(sum(n), 0) AS num_denominator_rows
FROM (SELECT count(*) AS n FROM {table} GROUP BY {field}) AS per_value
