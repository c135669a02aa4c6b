-- Staged events -> mapped events: every staged event with its person, visit, source concept and
-- standard concept(s), the CDM table it goes to and, for the rows that have one, its value concept.
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
-- Observation, Device); any other domain goes to OBSERVATION, OMOP's table of last resort. An unmapped
-- event goes where its kind says; an unmapped care plan (e.g. 'Care plan (record artifact)', a Type
-- Concept with no standard mapping) to OBSERVATION: only a plan was recorded, and PROCEDURE_OCCURRENCE
-- holds procedures ordered or done, which the vocabulary says of a Procedure-domain plan only. Except
-- where the event type fixes the table: an allergy or intolerance (event_kind 'allergy') is an
-- OBSERVATION whatever its substance's domain (OHDSI's FHIR-to-OMOP convention). Its code is the
-- substance: cdm_concept_id (observation_concept_id) says what kind of allergy it is, as OHDSI's own
-- SNOMED mapping splits "Allergy to <substance>" findings: 'Allergy to drug' when the substance's
-- standard concept is a drug or the source's category (value_as_string) is medication, else 'Allergic
-- disposition'; for allergy_type 'intolerance', 'Intolerance to drug' or 'Intolerance to substance'.
-- The substance's standard concept (0 when unmapped) is value_concept_id. A code that names the
-- allergy itself (its standard concept is an Observation-domain Clinical Finding: 'Allergy to
-- peanuts', 'No known allergy') is the observation concept, its value the code's "Maps to value"
-- target when the vocabulary decomposes it ('Allergy to penicillin' -> 'Allergy to drug' + penicillin),
-- else none. concept_id stays the code's own mapping: natural keys, unmapped counts and the reports
-- follow the source code, as for every event.
-- A claim diagnosis' status (condition_status) maps to its Condition Status concept here, where the
-- vocabulary is read: 'Admission diagnosis' is 0 when the loaded vocabulary lacks it (the demo subset).
-- Coded values (value_code, value_vocabulary_id: a FHIR valueCodeableConcept) map through code_map
-- like any code, to value_concept_id (value_as_concept_id); a value code that maps to several standard
-- concepts takes the lowest id (a row has one value), one that maps to nothing is 0 (and is reported,
-- build.py _results); no value code, NULL.
--
-- The mapping is a property of the code, not of the row: it is computed once per
-- distinct (vocabulary_id, code), event codes and value codes alike, into code_map (thousands of rows,
-- not millions), then every staged event is read once and joined to code_map (for its code and its
-- value code), its person and its visit. code_map being a table, DuckDB knows it is small and builds
-- its hash tables on code_map, the crosswalk and the visits, never on the events.
-- The distinct codes (event_code), then their source concepts (code_source) come first, as tables
-- too: with a full vocabulary (millions of concepts and relationships) DuckDB must know that this side
-- of each join is the small one, or it hashes CONCEPT or CONCEPT_RELATIONSHIP to find the rows in use.
CREATE OR REPLACE TEMP TABLE event_code AS
SELECT vocabulary_id, code, any_value(code_description) AS code_description
FROM (
    SELECT vocabulary_id, code, code_description FROM stg_event
    UNION ALL
    -- a value code's description is its display, staged in value_as_string
    SELECT value_vocabulary_id, value_code, value_as_string FROM stg_event WHERE value_code IS NOT NULL
)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE code_source AS
SELECT c.*, coalesce(sc.concept_id, 0) AS source_concept_id, sc.standard_concept AS source_standard
FROM event_code c
LEFT JOIN cdm.concept sc ON sc.vocabulary_id = c.vocabulary_id AND sc.concept_code = c.code;

CREATE OR REPLACE TEMP TABLE code_map AS
WITH with_source AS (SELECT * FROM code_source),
-- Relationships of the source concepts in use only: a full vocabulary has millions of "Maps to" rows.
maps_to AS (
    SELECT cr.concept_id_1, t.concept_id, t.domain_id, t.concept_class_id
    FROM cdm.concept_relationship cr
    JOIN cdm.concept t ON t.concept_id = cr.concept_id_2 AND t.standard_concept = 'S' AND t.invalid_reason IS NULL
    WHERE cr.relationship_id = 'Maps to' AND cr.invalid_reason IS NULL
      AND cr.concept_id_1 IN (SELECT source_concept_id FROM with_source)
),
maps_to_value AS (  -- the value half of a pre-coordinated code (one per code: the lowest id)
    SELECT cr.concept_id_1, min(t.concept_id) AS concept_id
    FROM cdm.concept_relationship cr
    JOIN cdm.concept t ON t.concept_id = cr.concept_id_2 AND t.standard_concept = 'S' AND t.invalid_reason IS NULL
    WHERE cr.relationship_id = 'Maps to value' AND cr.invalid_reason IS NULL
      AND cr.concept_id_1 IN (SELECT source_concept_id FROM with_source)
    GROUP BY cr.concept_id_1
),
stcm AS (
    SELECT m.source_vocabulary_id, m.source_code, t.concept_id, t.domain_id, t.concept_class_id
    FROM cdm.source_to_concept_map m
    JOIN cdm.concept t ON t.concept_id = m.target_concept_id AND t.standard_concept = 'S'
    WHERE m.invalid_reason IS NULL
)
SELECT s.vocabulary_id, s.code, s.code_description, s.source_concept_id,
       coalesce(m.concept_id, self.concept_id, st.concept_id, 0) AS concept_id,
       coalesce(m.domain_id, self.domain_id, st.domain_id) AS domain_id,
       coalesce(m.concept_class_id, self.concept_class_id, st.concept_class_id) AS concept_class_id,
       CASE WHEN m.concept_id IS NOT NULL THEN 'maps_to'
            WHEN self.concept_id IS NOT NULL THEN 'standard_source'
            WHEN st.concept_id IS NOT NULL THEN 'source_to_concept_map'
            ELSE 'unmapped' END AS mapping_rule,
       mv.concept_id AS maps_to_value_concept_id
FROM with_source s
LEFT JOIN maps_to m ON m.concept_id_1 = s.source_concept_id
LEFT JOIN maps_to_value mv ON mv.concept_id_1 = s.source_concept_id
-- The key is NULL (no match) unless the code is standard and unmapped: an equality, so a hash join; a
-- condition on the left side alone made DuckDB compare every code with every concept.
LEFT JOIN cdm.concept self
    ON self.concept_id = CASE WHEN s.source_standard = 'S' AND m.concept_id IS NULL THEN s.source_concept_id END
LEFT JOIN stcm st
    ON m.concept_id IS NULL AND self.concept_id IS NULL
   AND st.source_vocabulary_id = s.vocabulary_id AND st.source_code = s.code;

-- The event's provenance columns stay in staging (the CDM row's natural key leads back to them); the
-- code's description is in code_map.
CREATE OR REPLACE TEMP TABLE mapped_event AS
WITH value_map AS (
    SELECT vocabulary_id, code, min(concept_id) AS concept_id FROM code_map GROUP BY ALL
),
status_map AS (
    SELECT * FROM (VALUES ('primary', $primary_diagnosis), ('secondary', $secondary_diagnosis),
                          ('admitting', (SELECT coalesce(max(concept_id), 0) FROM cdm.concept
                                         WHERE concept_id = $admitting_diagnosis))) t(condition_status, concept_id)
),
events AS (
    SELECT e.* EXCLUDE (_source_entity, _source_file, _line_number, _batch_id, _ingested_at, code_description,
                        provider_key, source_person_id, visit_key),
           x.person_id, m.source_concept_id, m.concept_id, m.domain_id, m.mapping_rule,
           v.concept_id AS value_map_concept_id, m.maps_to_value_concept_id,
           e.event_kind = 'allergy' AS is_allergy,
           coalesce(m.domain_id = 'Observation' AND m.concept_class_id = 'Clinical Finding', false)
               AS names_a_finding,
           coalesce(m.domain_id = 'Drug' OR lower(e.value_as_string) = 'medication', false) AS is_drug,
           coalesce(lower(e.allergy_type) = 'intolerance', false) AS is_intolerance,
           e.source_system || '|' || e.record_key || '|' || m.concept_id AS natural_key,
           vd.visit_occurrence_id, vd.visit_detail_id, vd.provider_id,
           st.concept_id AS condition_status_concept_id
    FROM stg_event e
    JOIN crosswalk x USING (source_system, source_person_id)
    -- NULL codes and vocabularies are codes too (unmapped): IS NOT DISTINCT FROM keeps them.
    JOIN code_map m ON m.vocabulary_id IS NOT DISTINCT FROM e.vocabulary_id AND m.code IS NOT DISTINCT FROM e.code
    LEFT JOIN value_map v ON v.vocabulary_id = e.value_vocabulary_id AND v.code = e.value_code
    LEFT JOIN visit_link vd ON vd.visit_key = e.source_system || '|' || e.visit_key
    LEFT JOIN status_map st ON st.condition_status = e.condition_status
)
SELECT * EXCLUDE (value_map_concept_id, maps_to_value_concept_id, is_allergy, names_a_finding, is_drug,
                  is_intolerance),
       CASE WHEN is_allergy THEN 'observation'
            ELSE CASE coalesce(domain_id, CASE event_kind
                    WHEN 'condition' THEN 'Condition' WHEN 'drug' THEN 'Drug' WHEN 'immunization' THEN 'Drug'
                    WHEN 'procedure' THEN 'Procedure'
                    WHEN 'measurement' THEN 'Measurement' WHEN 'device' THEN 'Device' ELSE 'Observation' END)
                WHEN 'Condition' THEN 'condition_occurrence'
                WHEN 'Drug' THEN 'drug_exposure'
                WHEN 'Procedure' THEN 'procedure_occurrence'
                WHEN 'Measurement' THEN 'measurement'
                WHEN 'Device' THEN 'device_exposure'
                ELSE 'observation' END
       END AS cdm_table,
       CASE WHEN NOT is_allergy OR names_a_finding THEN concept_id
            WHEN is_intolerance AND is_drug THEN $intolerance_to_drug
            WHEN is_intolerance THEN $intolerance_to_substance
            WHEN is_drug THEN $allergy_to_drug
            ELSE $allergic_disposition END AS cdm_concept_id,
       CASE WHEN NOT is_allergy THEN value_map_concept_id
            WHEN names_a_finding THEN maps_to_value_concept_id
            ELSE concept_id END AS value_concept_id
FROM events
