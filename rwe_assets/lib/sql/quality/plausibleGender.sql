-- plausibleGender (CONCEPT): records of concept $concept_id whose person has the other known gender
-- than $gender_concept_id (one of $known_genders: MALE 8507, FEMALE 8532), out of all records of the
-- concept. Persons of unknown or other gender are not implausible and count only in the denominator.
SELECT count(*) FILTER (
           WHERE list_contains($known_genders, p.gender_concept_id) AND p.gender_concept_id <> $gender_concept_id
       ) AS num_violated_rows,
       count(*) AS num_denominator_rows
FROM {table} AS t
LEFT JOIN {person} AS p ON p.person_id = t.person_id
WHERE t.{field} = $concept_id
