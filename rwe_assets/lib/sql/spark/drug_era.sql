-- Spark variant of lib/sql/cdm/drug_era.sql (the rule is there), which DuckDB runs as DELETE then INSERT
-- with `date - date` as a day count: here the table is made whole, day counts by datediff and `date + n`
-- by date_add; spark_drug_ingredient is that file's drug_ingredient section. :persistence_window is
-- bound by lib/spark/build.py, which also logs the exposures without an ingredient (count_excluded).
CREATE OR REPLACE TEMP TABLE spark_drug_ingredient AS
SELECT ca.descendant_concept_id AS drug_concept_id, ca.ancestor_concept_id AS ingredient_concept_id
FROM cdm.concept_ancestor AS ca
JOIN cdm.concept AS c ON c.concept_id = ca.ancestor_concept_id
WHERE c.standard_concept = 'S' AND c.concept_class_id = 'Ingredient' AND c.vocabulary_id = 'RxNorm'
UNION
SELECT c.concept_id AS drug_concept_id, c.concept_id AS ingredient_concept_id
FROM cdm.concept AS c
WHERE c.standard_concept = 'S' AND c.concept_class_id = 'Ingredient' AND c.vocabulary_id = 'RxNorm';

CREATE OR REPLACE TABLE cdm.drug_era AS
WITH exposures AS (
    SELECT
        de.person_id,
        di.ingredient_concept_id AS concept_id,
        de.drug_exposure_start_date AS start_date,
        greatest(
            coalesce(
                de.drug_exposure_end_date,
                date_add(de.drug_exposure_start_date, CASE WHEN de.days_supply > 0 THEN de.days_supply END),
                date_add(de.drug_exposure_start_date, 1)
            ),
            de.drug_exposure_start_date
        ) AS end_date
    FROM cdm.drug_exposure AS de
    JOIN spark_drug_ingredient AS di ON di.drug_concept_id = de.drug_concept_id
),
flagged AS (
    SELECT
        *,
        max(end_date) OVER (
            PARTITION BY person_id, concept_id
            ORDER BY start_date
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_end
    FROM exposures
),
islands AS (
    SELECT
        person_id,
        concept_id,
        start_date,
        end_date,
        greatest(datediff(end_date, greatest(start_date, coalesce(previous_end, start_date))), 0)
            AS covered_days,
        sum(CASE WHEN previous_end IS NULL OR datediff(start_date, previous_end) > :persistence_window
            THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id, concept_id ORDER BY start_date) AS era_number
    FROM flagged
),
eras AS (
    SELECT
        person_id,
        concept_id,
        min(start_date) AS start_date,
        max(end_date) AS end_date,
        count(*) AS n,
        sum(covered_days) AS covered_days
    FROM islands
    GROUP BY person_id, concept_id, era_number
)
SELECT
    row_number() OVER (ORDER BY person_id, concept_id, start_date) AS drug_era_id,
    person_id,
    concept_id AS drug_concept_id,
    start_date AS drug_era_start_date,
    end_date AS drug_era_end_date,
    n AS drug_exposure_count,
    datediff(end_date, start_date) - covered_days AS gap_days
FROM eras;

-- count_excluded
SELECT count(*)
FROM cdm.drug_exposure AS de
WHERE NOT EXISTS (SELECT 1 FROM spark_drug_ingredient AS di WHERE di.drug_concept_id = de.drug_concept_id);

DROP TABLE spark_drug_ingredient;
