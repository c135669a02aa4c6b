-- Death dates of linked persons -> DEATH, one row per person: the earliest date any source records
-- (sources that disagree are visible in staging). Type: Claim when that date comes from a payer (a source
-- of kind claims in the registry: the beneficiary file), EHR otherwise (an EHR that sends insurance,
-- Synthea's payer_transitions or FHIR Coverage, is still an EHR). A date an EHR and a payer both state
-- is typed EHR, whatever order the rows come in (the EHR is the record of the death itself).
INSERT INTO cdm.death BY NAME
SELECT person_id, death_date, death_date::TIMESTAMP AS death_datetime,
       CASE WHEN from_claims THEN $type_claim ELSE $type_ehr END AS death_type_concept_id
FROM (
    SELECT CAST(x.person_id AS INTEGER) AS person_id, p.death_date,
           p.source_system IN (SELECT source_system FROM source_kind WHERE kind = 'claims') AS from_claims
    FROM stg_person_source p JOIN crosswalk x USING (source_system, source_person_id)
    WHERE p.death_date IS NOT NULL AND x.person_id IN (SELECT person_id FROM cdm.person)
)
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY death_date, from_claims) = 1
