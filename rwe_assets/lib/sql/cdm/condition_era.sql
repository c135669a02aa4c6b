-- condition_era: the OHDSI standard condition era rule (persistence window 30 days).
--
-- Input: condition_occurrence rows with condition_concept_id <> 0 (unmapped conditions never form eras).
-- Occurrence end = coalesce(condition_end_date, condition_start_date + 1 day), raised to the start date when
-- a source end date lies before its start (so every occurrence is a non-empty interval).
-- Per person and condition concept, occurrences sorted by start are merged into one era while the gap
-- between the next start and the latest end seen so far (next start - running max end, in days) is at most
-- the persistence window ($persistence_window, 30 by default): a gap of 30 days merges, 31 days splits.
-- Era start = first start, era end = last (greatest) end of the merged occurrences; the end is not padded.
-- condition_occurrence_count = number of occurrences merged into the era.
-- condition_era_id = row_number() over (person_id, condition_concept_id, era start): the table is fully
-- derived and rebuilt on every run, so ids are stable for identical input but not across input changes.
--
-- Algorithm: gaps-and-islands on a running max of end dates, equivalent to the OHDSI "pad the end dates
-- by 30 days" script (there a start falling on a padded end date,
-- i.e. 30 days after the end, sorts before that end and so merges).
-- Rows are sorted by start date only. previous_end (ROWS frame) is the running max of the ends of the rows
-- before; a row opens an era when previous_end is null or more than the window before its start; the era
-- number is a RANGE running sum of those flags, so rows sharing a start date always share an era whatever
-- order the two window passes put them in (only the first of them can open an era: the others already
-- see its end, which is on or after the shared start).
-- Placeholders: {schema} is a quoted identifier, $persistence_window a bound parameter.

-- name: delete
DELETE FROM {schema}.condition_era

-- name: insert
INSERT INTO {schema}.condition_era (
    condition_era_id,
    person_id,
    condition_concept_id,
    condition_era_start_date,
    condition_era_end_date,
    condition_occurrence_count
)
WITH occurrences AS (
    SELECT
        person_id,
        condition_concept_id AS concept_id,
        condition_start_date AS start_date,
        greatest(coalesce(condition_end_date, condition_start_date + 1), condition_start_date) AS end_date
    FROM {schema}.condition_occurrence
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
        sum(CASE WHEN previous_end IS NULL OR start_date - previous_end > $persistence_window THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id, concept_id ORDER BY start_date)
            AS era_number
    FROM flagged
),
eras AS (
    SELECT person_id, concept_id, min(start_date) AS start_date, max(end_date) AS end_date, count(*) AS n
    FROM islands
    GROUP BY person_id, concept_id, era_number
)
SELECT
    CAST(row_number() OVER (ORDER BY person_id, concept_id, start_date) AS INTEGER),
    person_id,
    concept_id,
    start_date,
    end_date,
    CAST(n AS INTEGER)
FROM eras
