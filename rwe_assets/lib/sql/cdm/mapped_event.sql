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
-- Two statements. The mapping is a property of the code, not of the row: it is computed once per
-- distinct (vocabulary_id, code) into code_map (thousands of rows, not millions), then every staged event
-- is read once and joined to code_map, its person and its visit. code_map being a table, DuckDB knows it
-- is small and builds its hash tables on code_map, the crosswalk and the visits, never on the events.
CREATE OR REPLACE TEMP TABLE code_map AS
WITH codes AS (
    SELECT vocabulary_id, code, any_value(code_description) AS code_description
    FROM stg_event GROUP BY ALL
),
with_source AS (
    SELECT c.*, coalesce(sc.concept_id, 0) AS source_concept_id, sc.standard_concept AS source_standard
    FROM codes c
    LEFT JOIN cdm.concept sc ON sc.vocabulary_id = c.vocabulary_id AND sc.concept_code = c.code
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
)
SELECT s.vocabulary_id, s.code, s.code_description, s.source_concept_id,
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
   AND st.source_vocabulary_id = s.vocabulary_id AND st.source_code = s.code;

-- The event's provenance columns stay in staging (the CDM row's natural key leads back to them); the
-- code's description is in code_map.
CREATE OR REPLACE TEMP TABLE mapped_event AS
SELECT e.* EXCLUDE (_source_entity, _source_file, _line_number, _batch_id, _ingested_at, code_description,
                    provider_key, source_person_id, visit_key),
       x.person_id, m.source_concept_id, m.concept_id, m.domain_id, m.mapping_rule,
       CASE coalesce(m.domain_id, CASE e.event_kind
                WHEN 'condition' THEN 'Condition' WHEN 'drug' THEN 'Drug' WHEN 'immunization' THEN 'Drug'
                WHEN 'procedure' THEN 'Procedure' WHEN 'careplan' THEN 'Procedure'
                WHEN 'measurement' THEN 'Measurement' WHEN 'device' THEN 'Device' ELSE 'Observation' END)
            WHEN 'Condition' THEN 'condition_occurrence'
            WHEN 'Drug' THEN 'drug_exposure'
            WHEN 'Procedure' THEN 'procedure_occurrence'
            WHEN 'Measurement' THEN 'measurement'
            WHEN 'Device' THEN 'device_exposure'
            ELSE 'observation' END AS cdm_table,
       e.source_system || '|' || e.record_key || '|' || m.concept_id AS natural_key,
       vd.visit_occurrence_id, vd.visit_detail_id, vd.provider_id
FROM stg_event e
JOIN crosswalk x USING (source_system, source_person_id)
-- NULL codes and vocabularies are codes too (unmapped): IS NOT DISTINCT FROM keeps them.
JOIN code_map m ON m.vocabulary_id IS NOT DISTINCT FROM e.vocabulary_id AND m.code IS NOT DISTINCT FROM e.code
LEFT JOIN visit_link vd ON vd.visit_key = e.source_system || '|' || e.visit_key
