-- Mapped events routed to Measurement -> MEASUREMENT. Units map to UCUM concepts (unit_map.sql); the
-- source unit is always kept. A coded result (FHIR valueCodeableConcept) maps to value_as_concept_id
-- (mapped_event.sql: 0 when its code maps to nothing) and keeps its code in value_source_value; a text
-- or numeric result keeps its text or number there. Type: EHR, or Claim for a claim's code.
INSERT INTO cdm.measurement BY NAME
SELECT i.id AS measurement_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.concept_id AS measurement_concept_id,
       m.start_datetime::DATE AS measurement_date,
       m.start_datetime AS measurement_datetime,
       CASE WHEN m.claim_type IS NULL THEN $type_ehr ELSE $type_claim END AS measurement_type_concept_id,
       m.value_as_number,
       m.value_concept_id AS value_as_concept_id,
       u.unit_concept_id,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS measurement_source_value,
       m.source_concept_id AS measurement_source_concept_id,
       left(m.unit_source_value, 50) AS unit_source_value,
       left(coalesce(m.value_code, m.value_as_string, CAST(m.value_as_number AS VARCHAR)), 50) AS value_source_value
FROM mapped_event m JOIN ids_measurement i USING (natural_key)
LEFT JOIN unit_map u ON u.unit_source_value = m.unit_source_value AND u.concept_id = m.concept_id
WHERE m.cdm_table = 'measurement'
