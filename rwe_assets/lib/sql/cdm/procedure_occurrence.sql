-- Mapped events routed to Procedure -> PROCEDURE_OCCURRENCE. Type: EHR, or Claim for a claim's code.
INSERT INTO cdm.procedure_occurrence BY NAME
SELECT i.id AS procedure_occurrence_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.concept_id AS procedure_concept_id,
       m.start_datetime::DATE AS procedure_date,
       m.start_datetime AS procedure_datetime,
       m.end_datetime::DATE AS procedure_end_date,
       m.end_datetime AS procedure_end_datetime,
       CASE WHEN m.claim_type IS NULL THEN $type_ehr ELSE $type_claim END AS procedure_type_concept_id,
       0 AS modifier_concept_id,
       CAST(m.quantity AS INTEGER) AS quantity,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS procedure_source_value,
       m.source_concept_id AS procedure_source_concept_id
FROM mapped_event m JOIN ids_procedure_occurrence i USING (natural_key)
WHERE m.cdm_table = 'procedure_occurrence'
