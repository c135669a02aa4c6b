-- plausibleBeforeDeath (FIELD): records of persons with a death record whose date is more than
-- $grace_days days after the death date (claims and administrative records legitimately trail a death),
-- out of those persons' records with a non-NULL value. Several death records: the latest counts.
SELECT count(*) FILTER (WHERE CAST(t.{field} AS DATE) > d.death_date + CAST($grace_days AS INTEGER))
           AS num_violated_rows,
       count(*) FILTER (WHERE t.{field} IS NOT NULL) AS num_denominator_rows
FROM {table} AS t
JOIN (SELECT person_id, max(death_date) AS death_date FROM {death} GROUP BY person_id) AS d
  ON d.person_id = t.person_id
