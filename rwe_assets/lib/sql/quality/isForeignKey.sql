-- isForeignKey (FIELD): records whose non-NULL value is not found in the referenced table's field, out
-- of the records with a non-NULL value. Records are first counted per distinct value, so the lookup
-- joins distinct values rather than every record. The lookup is a NOT EXISTS, not a join to the
-- referenced table's distinct values: that made every check against CONCEPT aggregate all of CONCEPT
-- (2M rows at Athena size), where the anti-join only probes the few thousand values in use.
SELECT coalesce(sum(v.n) FILTER (
           WHERE NOT EXISTS (SELECT 1 FROM {fk_table} AS ref WHERE ref.{fk_field} = v.value)
       ), 0) AS num_violated_rows,
       coalesce(sum(v.n), 0) AS num_denominator_rows
FROM (SELECT {field} AS value, count(*) AS n FROM {table} WHERE {field} IS NOT NULL GROUP BY {field}) AS v
