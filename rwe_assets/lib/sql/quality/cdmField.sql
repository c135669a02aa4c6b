-- cdmField (FIELD): is the column present in the table? Denominator 1; violated (1) when the column is
-- missing, also when the whole table is missing.
-- Values: $catalog, $schema_name, $table_name, $column_name (lower case).
SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END AS num_violated_rows,
       1 AS num_denominator_rows
FROM information_schema.columns
WHERE lower(table_catalog) = $catalog
  AND lower(table_schema) = $schema_name
  AND lower(table_name) = $table_name
  AND lower(column_name) = $column_name
