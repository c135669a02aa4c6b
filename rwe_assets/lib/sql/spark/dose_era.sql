-- Spark variant of lib/sql/cdm/dose_era.sql (the rule is there), which DuckDB runs as DELETE then INSERT
-- with `date - date` as a day count: here the table is made whole, day counts by datediff and `date + n`
-- by date_add. :persistence_window is bound by lib/spark/build.py (the DuckDB build's value).
CREATE OR REPLACE TABLE cdm.dose_era AS
WITH exposures AS (
    SELECT
        de.person_id,
        ds.ingredient_concept_id AS concept_id,
        ds.amount_unit_concept_id AS unit_concept_id,
        round(ds.amount_value * de.quantity / de.days_supply, 6) AS dose_value,
        de.drug_exposure_start_date AS start_date,
        greatest(
            coalesce(de.drug_exposure_end_date, date_add(de.drug_exposure_start_date, de.days_supply)),
            de.drug_exposure_start_date
        ) AS end_date
    FROM cdm.drug_exposure AS de
    JOIN cdm.drug_strength AS ds ON ds.drug_concept_id = de.drug_concept_id
    WHERE ds.amount_value IS NOT NULL
      AND ds.amount_unit_concept_id IS NOT NULL
      AND de.quantity > 0
      AND de.days_supply > 0
),
flagged AS (
    SELECT
        *,
        max(end_date) OVER (
            PARTITION BY person_id, concept_id, unit_concept_id, dose_value
            ORDER BY start_date
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_end
    FROM exposures
),
islands AS (
    SELECT
        *,
        sum(CASE WHEN previous_end IS NULL OR datediff(start_date, previous_end) > :persistence_window
            THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id, concept_id, unit_concept_id, dose_value ORDER BY start_date)
            AS era_number
    FROM flagged
),
eras AS (
    SELECT
        person_id,
        concept_id,
        unit_concept_id,
        dose_value,
        min(start_date) AS start_date,
        max(end_date) AS end_date
    FROM islands
    GROUP BY person_id, concept_id, unit_concept_id, dose_value, era_number
)
SELECT
    row_number() OVER (ORDER BY person_id, concept_id, start_date, unit_concept_id, dose_value)
        AS dose_era_id,
    person_id,
    concept_id AS drug_concept_id,
    unit_concept_id,
    dose_value,
    start_date AS dose_era_start_date,
    end_date AS dose_era_end_date
FROM eras;
