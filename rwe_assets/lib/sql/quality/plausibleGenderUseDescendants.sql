-- plausibleGenderUseDescendants (CONCEPT): as plausibleGender, for the records whose concept is one of
-- $concept_ids or a descendant of one of them (CONCEPT_ANCESTOR).
SELECT count(*) FILTER (
           WHERE list_contains($known_genders, p.gender_concept_id) AND p.gender_concept_id <> $gender_concept_id
       ) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table} AS t
LEFT JOIN {person} AS p ON p.person_id = t.person_id
WHERE t.{field} IN (
    SELECT descendant_concept_id FROM {concept_ancestor} WHERE list_contains($concept_ids, ancestor_concept_id)
    UNION
    SELECT unnest($concept_ids)
)
