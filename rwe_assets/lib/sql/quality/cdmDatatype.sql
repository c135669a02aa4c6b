-- cdmDatatype (FIELD, spec type integer): non-NULL values that are not whole numbers within the 32-bit
-- range of the spec's integer (text that does not parse as a number counts too), out of the non-NULL
-- values. A column typed INTEGER passes by construction; the check bites on columns loaded as
-- VARCHAR or DOUBLE.
SELECT count(*) FILTER (
           WHERE {field} IS NOT NULL
             AND NOT coalesce(TRY_CAST({field} AS DOUBLE) = round(TRY_CAST({field} AS DOUBLE))
                              AND TRY_CAST({field} AS DOUBLE) BETWEEN -2147483648 AND 2147483647, FALSE)
       ) AS num_violated_rows,
       count({field}) AS num_denominator_rows
FROM {table}
