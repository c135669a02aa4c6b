-- Staged providers -> PROVIDER. provider_name is left empty on purpose: names do not enter the CDM.
INSERT INTO cdm.provider BY NAME
SELECT i.id AS provider_id,
       cs.id AS care_site_id,
       CASE upper(p.gender_source_value) WHEN 'M' THEN $male WHEN 'F' THEN $female ELSE 0 END AS gender_concept_id,
       0 AS specialty_concept_id,
       left(p.provider_key, 50) AS provider_source_value,
       left(p.specialty_source_value, 50) AS specialty_source_value,
       left(p.gender_source_value, 50) AS gender_source_value
FROM stg_provider p
JOIN ids_provider i ON i.natural_key = p.source_system || '|' || p.provider_key
LEFT JOIN ids_care_site cs ON cs.natural_key = p.source_system || '|' || p.care_site_key
