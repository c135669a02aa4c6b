-- Staged events -> mapped events: every staged event with its person, visit, source concept and
-- standard concept(s), and the CDM table its standard concept's domain routes it to.
--
-- Mapping, as OMOP prescribes:
--   1. source concept: the CONCEPT row with the event's vocabulary_id and code (any standard status);
--   2. standard concept(s): that concept's valid "Maps to" targets. A code that maps to several
--      standard concepts gives one row per target (OMOP convention). A standard source concept
--      without a "Maps to" row maps to itself;
--   3. site-specific or demo mappings: SOURCE_TO_CONCEPT_MAP (source_vocabulary_id, source_code) when
--      step 2 found nothing;
--   4. nothing found: concept_id 0, with source value and source concept kept; the row is still
--      written, routed by the kind of event the source said it was, and counted as unmapped.
-- Routing: the standard concept's domain picks the table (Condition, Drug, Procedure, Measurement,
-- Observation, Device); any other domain goes to OBSERVATION, OMOP's table of last resort.
--
-- Two statements: the mapping first, into a table, then the visit link. Joined in one statement,
-- DuckDB's estimate of the mapped rows (from the small vocabulary tables) is far too low, and it builds
-- its hash table on the millions of events instead of the visits: out of memory at 10M events.
CREATE OR REPLACE TEMP TABLE mapped_source AS
WITH events AS (
    SELECT e.*, x.person_id
    FROM stg_event e
    JOIN crosswalk x USING (source_system, source_person_id)
),
with_source AS (
    SELECT e.*, coalesce(sc.concept_id, 0) AS source_concept_id, sc.standard_concept AS source_standard
    FROM events e
    LEFT JOIN cdm.concept sc ON sc.vocabulary_id = e.vocabulary_id AND sc.concept_code = e.code
),
maps_to AS (
    SELECT cr.concept_id_1, t.concept_id, t.domain_id
    FROM cdm.concept_relationship cr
    JOIN cdm.concept t ON t.concept_id = cr.concept_id_2 AND t.standard_concept = 'S' AND t.invalid_reason IS NULL
    WHERE cr.relationship_id = 'Maps to' AND cr.invalid_reason IS NULL
),
stcm AS (
    SELECT m.source_vocabulary_id, m.source_code, t.concept_id, t.domain_id
    FROM cdm.source_to_concept_map m
    JOIN cdm.concept t ON t.concept_id = m.target_concept_id AND t.standard_concept = 'S'
    WHERE m.invalid_reason IS NULL
),
targets AS (
    SELECT s.*,
           coalesce(m.concept_id, self.concept_id, st.concept_id, 0) AS concept_id,
           coalesce(m.domain_id, self.domain_id, st.domain_id) AS domain_id,
           CASE WHEN m.concept_id IS NOT NULL THEN 'maps_to'
                WHEN self.concept_id IS NOT NULL THEN 'standard_source'
                WHEN st.concept_id IS NOT NULL THEN 'source_to_concept_map'
                ELSE 'unmapped' END AS mapping_rule
    FROM with_source s
    LEFT JOIN maps_to m ON m.concept_id_1 = s.source_concept_id
    LEFT JOIN cdm.concept self
        ON self.concept_id = s.source_concept_id AND s.source_standard = 'S' AND m.concept_id IS NULL
    LEFT JOIN stcm st
        ON m.concept_id IS NULL AND self.concept_id IS NULL
       AND st.source_vocabulary_id = s.vocabulary_id AND st.source_code = s.code
)
SELECT * FROM targets;

CREATE OR REPLACE TEMP TABLE mapped_event AS
SELECT t.*,
       CASE coalesce(t.domain_id, CASE t.event_kind
                WHEN 'condition' THEN 'Condition' WHEN 'drug' THEN 'Drug' WHEN 'immunization' THEN 'Drug'
                WHEN 'procedure' THEN 'Procedure' WHEN 'careplan' THEN 'Procedure'
                WHEN 'measurement' THEN 'Measurement' WHEN 'device' THEN 'Device' ELSE 'Observation' END)
            WHEN 'Condition' THEN 'condition_occurrence'
            WHEN 'Drug' THEN 'drug_exposure'
            WHEN 'Procedure' THEN 'procedure_occurrence'
            WHEN 'Measurement' THEN 'measurement'
            WHEN 'Device' THEN 'device_exposure'
            ELSE 'observation' END AS cdm_table,
       t.source_system || '|' || t.record_key || '|' || t.concept_id AS natural_key,
       vd.visit_occurrence_id, vd.visit_detail_id, vd.provider_id
FROM mapped_source t
LEFT JOIN visit_link vd ON vd.visit_key = t.source_system || '|' || t.visit_key
