-- Mapped events routed to Condition -> CONDITION_OCCURRENCE. Type: EHR, or Claim for a claim's diagnosis.
-- Status (mapped in mapped_event.sql): a claim's first diagnosis is primary, the others secondary, its
-- admitting diagnosis 'Admission diagnosis' (0 when the loaded vocabulary lacks that concept, as the
-- demo subset does), the staged status kept as condition_status_source_value; NULL (not 0) otherwise:
-- Synthea and FHIR problem lists do not say primary/secondary, so there is no source value to map.
INSERT INTO cdm.condition_occurrence BY NAME
SELECT i.id AS condition_occurrence_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.concept_id AS condition_concept_id,
       m.start_datetime::DATE AS condition_start_date,
       m.start_datetime AS condition_start_datetime,
       m.end_datetime::DATE AS condition_end_date,
       m.end_datetime AS condition_end_datetime,
       CASE WHEN m.claim_type IS NULL THEN $type_ehr ELSE $type_claim END AS condition_type_concept_id,
       m.condition_status_concept_id,
       m.condition_status AS condition_status_source_value,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS condition_source_value,
       m.source_concept_id AS condition_source_concept_id
FROM mapped_event m JOIN ids_condition_occurrence i USING (natural_key)
WHERE m.cdm_table = 'condition_occurrence'
