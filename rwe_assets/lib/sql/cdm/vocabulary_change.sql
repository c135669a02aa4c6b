-- The vocabulary the build used (results.vocabulary) and, when it differs from the published database's,
-- what it did to the mapping (results.vocabulary_change): per event table and source code, the concepts
-- the code maps to there (side 'o') and here (side 'n'), compared. Run by lib/cdm/vocabulary_change.py,
-- section by section; not a step's file of its own (lib/cdm/steps.py runs it through a Call).

-- name: vocabulary
CREATE OR REPLACE TABLE results.vocabulary AS
SELECT $digest AS digest, $version AS vocabulary_version, $concepts::BIGINT AS concepts,
       $relationships::BIGINT AS concept_relationships, $ancestors::BIGINT AS concept_ancestors,
       $demo AS demo_subset, $warning AS warning

-- name: unmapped_rows
SELECT count(*), count(*) FILTER (WHERE {concept_id} = 0) FROM {table}

-- name: change_table
CREATE OR REPLACE TABLE results.vocabulary_change (
    previous_version VARCHAR, current_version VARCHAR, cdm_table VARCHAR, source_value VARCHAR,
    change VARCHAR, previous_concepts INTEGER[], current_concepts INTEGER[],
    previous_rows BIGINT, current_rows BIGINT)

-- name: mapping_table
CREATE OR REPLACE TEMP TABLE vocabulary_mapping (
    cdm_table VARCHAR, side VARCHAR, source_value VARCHAR, concepts INTEGER[], rows BIGINT)

-- name: mapping
-- one event table: the concepts each source code maps to (a code may map to several) and its rows
INSERT INTO vocabulary_mapping
SELECT $cdm_table, side, {source_value}, list_sort(list_distinct(list({concept_id}))), count(*)
FROM (SELECT 'n' AS side, * FROM {table} UNION ALL BY NAME SELECT 'o' AS side, * FROM {published_table})
GROUP BY ALL

-- name: change
INSERT INTO results.vocabulary_change
WITH paired AS (
    SELECT cdm_table, source_value, o.concepts AS previous_concepts, n.concepts AS current_concepts,
           coalesce(o.rows, 0) AS previous_rows, coalesce(n.rows, 0) AS current_rows
    FROM (SELECT * FROM vocabulary_mapping WHERE side = 'o') o
    FULL JOIN (SELECT * FROM vocabulary_mapping WHERE side = 'n') n USING (cdm_table, source_value)
)
SELECT $previous, $current, cdm_table, source_value,
       CASE WHEN current_concepts IS NULL THEN 'left_table'
            WHEN previous_concepts IS NULL THEN 'entered_table'
            WHEN previous_concepts = [0] THEN 'newly_mapped'
            WHEN current_concepts = [0] THEN 'newly_unmapped'
            ELSE 'concept_changed' END,
       previous_concepts, current_concepts, previous_rows, current_rows
FROM paired
WHERE previous_concepts IS DISTINCT FROM current_concepts
ORDER BY cdm_table, source_value
