-- Mapped events routed to Drug -> DRUG_EXPOSURE. End date (required), by the OMOP (THEMIS) convention:
-- the end the source states; else the last day the supply covers, start + days_supply x (1 + refills)
-- - 1 (a 30-day fill started on the 1st ends on the 30th; a prescription covers its refills); else the
-- start day (unknown duration). verbatim_end_date keeps the source end; refills as the source states. Type: EHR prescription for medications, EHR administration record for vaccines,
-- Pharmacy claim for a payer's fills (Claim for drugs billed on a medical claim).
INSERT INTO cdm.drug_exposure BY NAME
SELECT i.id AS drug_exposure_id,
       CAST(m.person_id AS INTEGER) AS person_id,
       m.concept_id AS drug_concept_id,
       m.start_datetime::DATE AS drug_exposure_start_date,
       m.start_datetime AS drug_exposure_start_datetime,
       coalesce(m.end_datetime::DATE,
                CASE WHEN m.days_supply > 0
                     THEN m.start_datetime::DATE + m.days_supply * (1 + coalesce(m.refills, 0)) - 1 END,
                m.start_datetime::DATE) AS drug_exposure_end_date,
       m.end_datetime AS drug_exposure_end_datetime,
       m.end_datetime::DATE AS verbatim_end_date,
       CASE WHEN m.claim_type = 'pharmacy' THEN $type_pharmacy_claim WHEN m.claim_type IS NOT NULL THEN $type_claim
            WHEN m.event_kind = 'immunization' THEN $type_ehr_administration ELSE $type_ehr_prescription END
           AS drug_type_concept_id,
       m.quantity, m.days_supply, m.refills,
       0 AS route_concept_id,
       m.provider_id, m.visit_occurrence_id, m.visit_detail_id,
       left(m.code, 50) AS drug_source_value,
       m.source_concept_id AS drug_source_concept_id
FROM mapped_event m JOIN ids_drug_exposure i USING (natural_key)
WHERE m.cdm_table = 'drug_exposure'
