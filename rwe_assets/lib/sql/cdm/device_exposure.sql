-- Mapped events routed to Device -> DEVICE_EXPOSURE. The UDI is not carried (it can identify a
-- person). Type: EHR, or Claim for a claim's code.
INSERT INTO cdm.device_exposure BY NAME
SELECT i.id AS device_exposure_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.concept_id AS device_concept_id,
       m.start_datetime::DATE AS device_exposure_start_date,
       m.start_datetime AS device_exposure_start_datetime,
       m.end_datetime::DATE AS device_exposure_end_date,
       m.end_datetime AS device_exposure_end_datetime,
       CASE WHEN m.claim_type IS NULL THEN $type_ehr ELSE $type_claim END AS device_type_concept_id,
       CAST(m.quantity AS INTEGER) AS quantity,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS device_source_value,
       m.source_concept_id AS device_source_concept_id
FROM mapped_event m JOIN ids_device_exposure i USING (natural_key)
WHERE m.cdm_table = 'device_exposure'
