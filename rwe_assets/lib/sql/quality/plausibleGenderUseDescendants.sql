-- plausibleGenderUseDescendants (CONCEPT): as plausibleGender, for the records whose concept is one of
-- $concept_ids or a descendant of one of them (CONCEPT_ANCESTOR). The ancestors are a semi-join with
-- the unnested list, not list_contains() per row: DuckDB then hashes the few ids and pushes them into
-- the CONCEPT_ANCESTOR scan as a filter (0.13 -> 0.05 s a check with 10M ancestor rows).
SELECT count(*) FILTER (
           WHERE list_contains($known_genders, p.gender_concept_id) AND p.gender_concept_id <> $gender_concept_id
       ) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table} AS t
LEFT JOIN {person} AS p ON p.person_id = t.person_id
WHERE t.{field} IN (
    SELECT descendant_concept_id FROM {concept_ancestor}
    WHERE ancestor_concept_id IN (SELECT unnest($concept_ids))
    UNION
    SELECT unnest($concept_ids)
)
