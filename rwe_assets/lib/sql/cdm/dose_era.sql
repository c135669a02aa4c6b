-- dose_era: eras of constant daily dose per ingredient (OHDSI era rule, persistence window 30 days).
--
-- Dose: a drug_exposure row joins drug_strength on drug_concept_id (one row per ingredient of the drug;
-- drug_strength.ingredient_concept_id is the era's drug_concept_id). Daily dose
--     dose_value = round(amount_value * quantity / days_supply, 6)   in amount_unit_concept_id
-- and needs amount_value and amount_unit_concept_id present and quantity > 0 and days_supply > 0.
-- An exposure contributes nothing to dose_era when its drug has no drug_strength row, or the row has no
-- amount (liquid and other numerator/denominator strengths are not converted), or quantity or days_supply
-- is missing or not positive. Rounding to 6 decimals keeps binary floating-point noise from splitting eras
-- of the same dose reached through different products. drug_strength validity dates are not applied.
-- Exposure end = coalesce(drug_exposure_end_date, drug_exposure_start_date + days_supply days), raised to
-- the start date when it lies before it (days_supply > 0 here, so the "+ 1 day" fallback never applies).
-- Per person, ingredient, unit_concept_id and dose_value, exposures sorted by start are merged into one era
-- while the gap between the next start and the latest end seen so far is at most the persistence window
-- ($persistence_window, 30 by default). Era start = first start, era end = greatest end. Eras of different
-- doses of one ingredient may overlap in time.
-- dose_era_id = row_number() over (person_id, drug_concept_id, era start, unit, dose): the table is fully
-- derived and rebuilt on every run, so ids are stable for identical input but not across input changes.
--
-- Algorithm: gaps-and-islands on a running max of end dates.
-- Rows are sorted by start date only. previous_end (ROWS frame) is the running max of the ends of the rows
-- before; a row opens an era when previous_end is null or more than the window before its start; the era
-- number is a RANGE running sum of those flags, so rows sharing a start date always share an era whatever
-- order the two window passes put them in (only the first of them can open an era: the others already
-- see its end, which is on or after the shared start).
-- Placeholders: {schema} is a quoted identifier, $persistence_window a bound parameter.

-- name: delete
DELETE FROM {schema}.dose_era

-- name: insert
INSERT INTO {schema}.dose_era (
    dose_era_id,
    person_id,
    drug_concept_id,
    unit_concept_id,
    dose_value,
    dose_era_start_date,
    dose_era_end_date
)
WITH exposures AS (
    SELECT
        de.person_id,
        ds.ingredient_concept_id AS concept_id,
        ds.amount_unit_concept_id AS unit_concept_id,
        round(ds.amount_value * de.quantity / de.days_supply, 6) AS dose_value,
        de.drug_exposure_start_date AS start_date,
        greatest(
            coalesce(de.drug_exposure_end_date, de.drug_exposure_start_date + de.days_supply),
            de.drug_exposure_start_date
        ) AS end_date
    FROM {schema}.drug_exposure AS de
    JOIN {schema}.drug_strength AS ds ON ds.drug_concept_id = de.drug_concept_id
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
        sum(CASE WHEN previous_end IS NULL OR start_date - previous_end > $persistence_window THEN 1 ELSE 0 END)
            OVER (
                PARTITION BY person_id, concept_id, unit_concept_id, dose_value
                ORDER BY start_date
            ) AS era_number
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
    CAST(row_number() OVER (ORDER BY person_id, concept_id, start_date, unit_concept_id, dose_value) AS INTEGER),
    person_id,
    concept_id,
    unit_concept_id,
    dose_value,
    start_date,
    end_date
FROM eras
