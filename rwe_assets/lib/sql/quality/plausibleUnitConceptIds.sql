-- plausibleUnitConceptIds (CONCEPT): records of concept $concept_id carrying a numeric result whose
-- unit is not one of $unit_concept_ids, out of the concept's records with a numeric result
-- (value_as_number; a qualitative result has no unit to judge). -1 in the list stands for "no unit"
-- (unit_concept_id NULL); a unit of 0 (unmapped) is a unit like any other.
SELECT count(*) FILTER (WHERE NOT list_contains($unit_concept_ids, coalesce(t.unit_concept_id, -1)))
           AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table} AS t
WHERE t.{field} = $concept_id
  AND t.value_as_number IS NOT NULL
