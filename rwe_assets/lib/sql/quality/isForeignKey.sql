-- isForeignKey (FIELD): records whose non-NULL value is not found in the referenced table's field, out
-- of the records with a non-NULL value. Records are first counted per distinct value, so the lookup
-- joins distinct values rather than every record.
SELECT coalesce(sum(v.n) FILTER (WHERE ref.value IS NULL), 0) AS num_violated_rows,
       coalesce(sum(v.n), 0) AS num_denominator_rows
FROM (SELECT {field} AS value, count(*) AS n FROM {table} WHERE {field} IS NOT NULL GROUP BY {field}) AS v
LEFT JOIN (SELECT DISTINCT {fk_field} AS value FROM {fk_table}) AS ref ON ref.value = v.value
