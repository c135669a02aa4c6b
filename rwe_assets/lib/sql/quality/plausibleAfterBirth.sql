-- plausibleAfterBirth (FIELD): records whose date (by day) is before the person's birth, out of the
-- records with a non-NULL value and a known person. Birth is birth_datetime when given, otherwise the
-- first day of month_of_birth (January when unknown or invalid) of year_of_birth: the earliest day
-- the person can have been born, so an incomplete birth date never makes a record implausible.
SELECT count(*) FILTER (WHERE CAST(t.{field} AS DATE) < b.birth_date) AS num_violated_rows,
       count(*) FILTER (WHERE t.{field} IS NOT NULL AND b.birth_date IS NOT NULL) AS num_denominator_rows
FROM {table} AS t
JOIN (
    SELECT person_id,
           min(coalesce(CAST(birth_datetime AS DATE),
                        make_date(year_of_birth,
                                  CASE WHEN month_of_birth BETWEEN 1 AND 12 THEN month_of_birth ELSE 1 END,
                                  1))) AS birth_date
    FROM {person}
    GROUP BY person_id
) AS b ON b.person_id = t.person_id
