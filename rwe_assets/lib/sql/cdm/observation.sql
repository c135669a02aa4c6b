-- Mapped events routed to Observation (and every domain without a table of its own) -> OBSERVATION.
-- observation_concept_id is the mapped concept, except for an allergy or intolerance: its kind ('Allergy
-- to drug', 'Allergic disposition', 'Intolerance to ...'), the substance's standard concept in
-- value_as_concept_id and its code in observation_source_value and value_source_value (mapped_event.sql).
-- Allergies keep their category (food, medication, environment) in value_as_string. A coded value
-- (FHIR valueCodeableConcept) maps to value_as_concept_id (0 when its code maps to nothing), its
-- display in value_as_string and its code in value_source_value. Units as in MEASUREMENT
-- (unit_map.sql). Type: EHR, or Claim for a claim's code.
INSERT INTO cdm.observation BY NAME
SELECT i.id AS observation_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.cdm_concept_id AS observation_concept_id,
       m.start_datetime::DATE AS observation_date,
       m.start_datetime AS observation_datetime,
       CASE WHEN m.claim_type IS NULL THEN $type_ehr ELSE $type_claim END AS observation_type_concept_id,
       m.value_as_number,
       left(m.value_as_string, 60) AS value_as_string,
       m.value_concept_id AS value_as_concept_id,
       u.unit_concept_id,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS observation_source_value,
       m.source_concept_id AS observation_source_concept_id,
       left(m.unit_source_value, 50) AS unit_source_value,
       left(CASE WHEN m.event_kind = 'allergy' THEN m.code ELSE m.value_code END, 50) AS value_source_value
FROM mapped_event m JOIN ids_observation i USING (natural_key)
LEFT JOIN unit_map u ON u.unit_source_value = m.unit_source_value AND u.concept_id = m.concept_id
WHERE m.cdm_table = 'observation'
