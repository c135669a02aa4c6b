-- Gender source value -> OMOP gender concept, the one mapping PROVIDER and PERSON use (person.sql joins
-- gender_map too; this step runs first). Matched on lower(trim(value)): Synthea CSV writes M/F, FHIR
-- R4 Patient.gender and Practitioner.gender male/female; claims_code rows (DE-SynPUF sex 1 male,
-- 2 female) apply to sources with enrollment only. Anything else (FHIR other/unknown, a code no row
-- names): concept 0, the source value kept in gender_source_value.
CREATE OR REPLACE TEMP TABLE gender_map AS
SELECT * FROM (VALUES
    ('m', false, $male), ('male', false, $male),
    ('f', false, $female), ('female', false, $female),
    ('1', true, $male), ('2', true, $female)
) AS t(source_value, claims_code, concept_id);

-- Staged providers -> PROVIDER. provider_name is left empty on purpose: names do not enter the CDM.
-- No provider source carries claims sex codes, so only the rows of gender_map without claims_code apply.
INSERT INTO cdm.provider BY NAME
SELECT i.id AS provider_id,
       cs.id AS care_site_id,
       coalesce(g.concept_id, 0) AS gender_concept_id,
       0 AS specialty_concept_id,
       left(p.provider_key, 50) AS provider_source_value,
       left(p.specialty_source_value, 50) AS specialty_source_value,
       left(p.gender_source_value, 50) AS gender_source_value
FROM stg_provider p
JOIN ids_provider i ON i.natural_key = p.source_system || '|' || p.provider_key
LEFT JOIN ids_care_site cs ON cs.natural_key = p.source_system || '|' || p.care_site_key
LEFT JOIN gender_map g ON g.source_value = lower(trim(p.gender_source_value)) AND NOT g.claims_code
