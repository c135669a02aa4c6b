-- fkDomain (FIELD): records whose concept (other than 0, "No matching concept") belongs to another
-- domain than $domain, out of the records with a non-NULL value. Concepts missing from CONCEPT are
-- left to isForeignKey.
SELECT coalesce(sum(v.n) FILTER (WHERE c.concept_id <> 0 AND c.domain_id IS DISTINCT FROM $domain), 0)
           AS num_violated_rows,
       coalesce(sum(v.n), 0) AS num_denominator_rows
FROM (SELECT {field} AS value, count(*) AS n FROM {table} WHERE {field} IS NOT NULL GROUP BY {field}) AS v
LEFT JOIN {concept} AS c ON c.concept_id = v.value
