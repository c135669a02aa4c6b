-- isStandardValidConcept (FIELD): records whose concept (other than 0) is not a standard ('S') concept
-- or is no longer valid (invalid_reason set), out of the records with a non-NULL value. Concepts missing
-- from CONCEPT are left to isForeignKey; 0 is measured by standardConceptRecordCompleteness.
SELECT coalesce(sum(v.n) FILTER (
           WHERE c.concept_id <> 0 AND (c.standard_concept IS DISTINCT FROM 'S' OR c.invalid_reason IS NOT NULL)
       ), 0) AS num_violated_rows,
       coalesce(sum(v.n), 0) AS num_denominator_rows
FROM (SELECT {field} AS value, count(*) AS n FROM {table} WHERE {field} IS NOT NULL GROUP BY {field}) AS v
LEFT JOIN {concept} AS c ON c.concept_id = v.value
