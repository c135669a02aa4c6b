-- Death dates of linked persons -> DEATH, one row per person: the earliest date any source records
-- (sources that disagree are visible in staging). Type: Claim when that date comes from a payer (a source
-- of kind claims in the registry: the beneficiary file), EHR otherwise (an EHR that sends insurance,
-- Synthea's payer_transitions or FHIR Coverage, is still an EHR).
INSERT INTO cdm.death BY NAME
SELECT CAST(x.person_id AS INTEGER) AS person_id, min(p.death_date) AS death_date,
       min(p.death_date)::TIMESTAMP AS death_datetime,
       CASE WHEN arg_min(p.source_system, p.death_date) IN (SELECT source_system FROM source_kind WHERE kind = 'claims')
            THEN $type_claim ELSE $type_ehr END AS death_type_concept_id
FROM stg_person_source p JOIN crosswalk x USING (source_system, source_person_id)
WHERE p.death_date IS NOT NULL AND x.person_id IN (SELECT person_id FROM cdm.person)
GROUP BY x.person_id
