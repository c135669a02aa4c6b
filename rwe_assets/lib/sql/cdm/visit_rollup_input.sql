-- visit_rollup_input.sql: the typed input of the visit rollup (visit_rollup.sql states every rule).
--
-- Run by rwe_assets.lib.cdm.visits.rollup_visits, which then validates this table before the rollup.
-- Placeholders ({name}, filled by lib/cdm/sql.py; see lib/sql/README.md):
--   staged_visits   the input table or view (visit_key, person_id, visit_class, start_datetime,
--                   end_datetime, source_system, provider_key, care_site_key, source_value)
--   work_base       the temporary table created here
--   class_map       VALUES rows (visit_class, visit_concept_id, rollup_role) from visits.VISIT_CLASSES
--
-- Types are fixed here whatever the input's (a DATE start becomes midnight, an integer key a string).
-- R0: a NULL end_datetime, or one before the start, becomes the start (see visit_rollup.sql for why).
-- Classes outside VISIT_CLASSES (and NULL) get concept 0 and role 'other': they merge only as exact
-- duplicates (R3); class_mapped = false marks them for the caller's count.

CREATE OR REPLACE TEMP TABLE {work_base} AS
WITH
class_map (visit_class, class_concept_id, rollup_role) AS (
    VALUES {class_map}
),
typed AS (
    SELECT
        CAST(s.visit_key AS VARCHAR) AS visit_key,
        CAST(s.person_id AS BIGINT) AS person_id,
        CAST(s.visit_class AS VARCHAR) AS visit_class,
        CAST(s.source_system AS VARCHAR) AS source_system,
        CAST(s.provider_key AS VARCHAR) AS provider_key,
        CAST(s.care_site_key AS VARCHAR) AS care_site_key,
        CAST(s.source_value AS VARCHAR) AS source_value,
        CAST(s.start_datetime AS TIMESTAMP) AS start_datetime,
        CAST(s.end_datetime AS TIMESTAMP) AS raw_end_datetime,
        coalesce(m.class_concept_id, 0) AS class_concept_id,
        coalesce(m.rollup_role, 'other') AS rollup_role,
        m.rollup_role IS NOT NULL AS class_mapped
    FROM {staged_visits} AS s
    LEFT JOIN class_map AS m ON m.visit_class = CAST(s.visit_class AS VARCHAR)
),
ended AS (
    SELECT
        * EXCLUDE (raw_end_datetime),
        CASE
            WHEN raw_end_datetime IS NULL OR raw_end_datetime < start_datetime THEN start_datetime
            ELSE raw_end_datetime
        END AS end_datetime
    FROM typed
)
SELECT *, CAST(start_datetime AS DATE) AS start_date, CAST(end_datetime AS DATE) AS end_date
FROM ended;
