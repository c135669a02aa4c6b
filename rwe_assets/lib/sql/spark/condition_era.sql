-- Spark variant of lib/sql/cdm/condition_era.sql (the rule is there), which DuckDB runs as DELETE then
-- INSERT with `date - date` as a day count: here the table is made whole, day counts by datediff and
-- `date + n` by date_add. :persistence_window is bound by lib/spark/build.py (the DuckDB build's value).
CREATE OR REPLACE TABLE cdm.condition_era AS
WITH occurrences AS (
    SELECT
        person_id,
        condition_concept_id AS concept_id,
        condition_start_date AS start_date,
        greatest(coalesce(condition_end_date, date_add(condition_start_date, 1)), condition_start_date)
            AS end_date
    FROM cdm.condition_occurrence
    WHERE condition_concept_id <> 0
),
flagged AS (
    SELECT
        *,
        max(end_date) OVER (
            PARTITION BY person_id, concept_id
            ORDER BY start_date
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_end
    FROM occurrences
),
islands AS (
    SELECT
        *,
        sum(CASE WHEN previous_end IS NULL OR datediff(start_date, previous_end) > :persistence_window
            THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id, concept_id ORDER BY start_date) AS era_number
    FROM flagged
),
eras AS (
    SELECT person_id, concept_id, min(start_date) AS start_date, max(end_date) AS end_date, count(*) AS n
    FROM islands
    GROUP BY person_id, concept_id, era_number
)
SELECT
    row_number() OVER (ORDER BY person_id, concept_id, start_date) AS condition_era_id,
    person_id,
    concept_id AS condition_concept_id,
    start_date AS condition_era_start_date,
    end_date AS condition_era_end_date,
    n AS condition_occurrence_count
FROM eras;
