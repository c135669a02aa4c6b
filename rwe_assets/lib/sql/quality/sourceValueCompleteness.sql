-- sourceValueCompleteness (FIELD): distinct source values (the field) that occur on a record whose
-- standard concept field (the catalogue's standardConceptFieldName) is 0, out of all distinct non-NULL
-- source values. Counts distinct values, not records; a NULL source value is no value and counts in
-- neither.
SELECT count(DISTINCT {field}) FILTER (WHERE {concept_field} = 0) AS num_violated_rows,
       count(DISTINCT {field}) AS num_denominator_rows
FROM {table}
