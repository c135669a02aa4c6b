-- plausibleDuringLife (FIELD): records of persons with a death record whose date (by day) is after the
-- death date, out of those persons' records with a non-NULL value. A person with several death records
-- is compared with the latest.
SELECT count(*) FILTER (WHERE CAST(t.{field} AS DATE) > d.death_date) AS num_violated_rows,
       count(*) FILTER (WHERE t.{field} IS NOT NULL) AS num_denominator_rows
FROM {table} AS t
JOIN (SELECT person_id, max(death_date) AS death_date FROM {death} GROUP BY person_id) AS d
  ON d.person_id = t.person_id
