-- measureConditionEraCompleteness (TABLE): persons with a mapped condition (condition_concept_id other
-- than 0, the records condition eras are built from) but no condition era, out of the persons with a
-- mapped condition.
SELECT count(*) FILTER (WHERE e.person_id IS NULL) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM (SELECT DISTINCT person_id FROM {condition_occurrence} WHERE condition_concept_id <> 0) AS c
LEFT JOIN (SELECT DISTINCT person_id FROM {table}) AS e ON e.person_id = c.person_id
