-- measurePersonCompleteness (TABLE): persons without a single record in the table, out of all persons.
SELECT count(*) FILTER (WHERE r.person_id IS NULL) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {person} AS p
LEFT JOIN (SELECT DISTINCT person_id FROM {table}) AS r ON r.person_id = p.person_id
