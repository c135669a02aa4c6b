-- drug_era: the OHDSI standard drug era rule (ingredient level, persistence window 30 days).
--
-- Ingredient roll-up: an ingredient is a concept with standard_concept = 'S', concept_class_id = 'Ingredient'
-- and vocabulary_id = 'RxNorm'. A drug_exposure row counts towards every ingredient that is an ancestor of
-- its drug_concept_id in concept_ancestor (a combination product therefore counts towards each of its
-- ingredients); a drug_concept_id that is itself an ingredient counts towards itself, whether or not
-- concept_ancestor holds its (X, X, 0) row. Exposures whose drug has no ingredient (including concept 0)
-- are left out of drug_era; the builder returns their number as EraResult.excluded.
-- Exposure end = coalesce(drug_exposure_end_date, drug_exposure_start_date + days_supply days when
-- days_supply > 0, drug_exposure_start_date + 1 day), raised to the start date when it lies before it.
-- Per person and ingredient, exposures sorted by start are merged into one era while the gap between the
-- next start and the latest end seen so far is at most the persistence window ($persistence_window, 30 by
-- default): a gap of 30 days merges, 31 days splits. Era start = first start, era end = greatest end.
-- drug_exposure_count = number of exposure rows merged into the era (counted per ingredient).
-- gap_days = (era end - era start) - covered days, where covered days is the length of the union of the
-- exposure intervals [start, end) of the era, overlaps counted once: the days of the era not covered by
-- any exposure, as the OHDSI script computes it from its non-overlapping sub-exposures.
-- drug_era_id = row_number() over (person_id, drug_concept_id, era start): the table is fully derived and
-- rebuilt on every run, so ids are stable for identical input but not across input changes.
--
-- Algorithm: gaps-and-islands on a running max of end dates.
-- Rows are sorted by start date only. previous_end (ROWS frame) is the running max of the ends of the rows
-- before; a row opens an era when previous_end is null or more than the window before its start; the era
-- number is a RANGE running sum of those flags, so rows sharing a start date always share an era whatever
-- order the two window passes put them in (only the first of them can open an era: the others already
-- see its end, which is on or after the shared start).
-- The same running max gives the covered days in the same pass: with rows sorted by start (ties in any
-- order), row i adds max(0, end_i - max(start_i, previous_end_i)), and these sum to the union's length.
-- Placeholders: {schema} is a quoted identifier, {drug_ingredient} inlines the section of that name,
-- $persistence_window is a bound parameter.

-- name: drug_ingredient
SELECT ca.descendant_concept_id AS drug_concept_id, ca.ancestor_concept_id AS ingredient_concept_id
FROM {schema}.concept_ancestor AS ca
JOIN {schema}.concept AS c ON c.concept_id = ca.ancestor_concept_id
WHERE c.standard_concept = 'S' AND c.concept_class_id = 'Ingredient' AND c.vocabulary_id = 'RxNorm'
UNION
SELECT c.concept_id AS drug_concept_id, c.concept_id AS ingredient_concept_id
FROM {schema}.concept AS c
WHERE c.standard_concept = 'S' AND c.concept_class_id = 'Ingredient' AND c.vocabulary_id = 'RxNorm'

-- name: delete
DELETE FROM {schema}.drug_era

-- name: insert
INSERT INTO {schema}.drug_era (
    drug_era_id,
    person_id,
    drug_concept_id,
    drug_era_start_date,
    drug_era_end_date,
    drug_exposure_count,
    gap_days
)
WITH exposures AS (
    SELECT
        de.person_id,
        di.ingredient_concept_id AS concept_id,
        de.drug_exposure_start_date AS start_date,
        greatest(
            coalesce(
                de.drug_exposure_end_date,
                de.drug_exposure_start_date + CASE WHEN de.days_supply > 0 THEN de.days_supply END,
                de.drug_exposure_start_date + 1
            ),
            de.drug_exposure_start_date
        ) AS end_date
    FROM {schema}.drug_exposure AS de
    JOIN {drug_ingredient} AS di ON di.drug_concept_id = de.drug_concept_id
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
        greatest(end_date - greatest(start_date, coalesce(previous_end, start_date)), 0) AS covered_days,
        sum(CASE WHEN previous_end IS NULL OR start_date - previous_end > $persistence_window THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id, concept_id ORDER BY start_date)
            AS era_number
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
    CAST(row_number() OVER (ORDER BY person_id, concept_id, start_date) AS INTEGER),
    person_id,
    concept_id,
    start_date,
    end_date,
    CAST(n AS INTEGER),
    CAST((end_date - start_date) - covered_days AS INTEGER)
FROM eras

-- name: count_excluded
SELECT count(*)
FROM {schema}.drug_exposure AS de
WHERE NOT EXISTS (
    SELECT 1 FROM {drug_ingredient} AS di WHERE di.drug_concept_id = de.drug_concept_id
)
