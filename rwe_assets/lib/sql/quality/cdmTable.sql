-- cdmTable (TABLE): is the table present? One thing is evaluated, so the denominator is 1 and the
-- check is violated (1) when the schema has no table or view of that name.
-- Values: $catalog, $schema_name, $table_name (lower case).
SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END AS num_violated_rows,
       1 AS num_denominator_rows
FROM information_schema.tables
WHERE lower(table_catalog) = $catalog
  AND lower(table_schema) = $schema_name
  AND lower(table_name) = $table_name
