-- Linked persons -> PERSON. One row per person_id of the crosswalk. When several source records
-- describe one person, demographics come from the record with a birth date, then the most recently
-- ingested, then the first by source system and id (deterministic). Gender through gender_map, the
-- mapping provider.sql defines for PROVIDER and PERSON alike (Synthea F/M, FHIR female/male, claims
-- 1/2 for sources with enrollment), anything else 0 with the source value kept; race and ethnicity
-- likewise. DE-SynPUF codes (sources with enrollment): sex 1 male, 2 female; race 1 white,
-- 2 black, 5 Hispanic (an ethnicity), 3 other: 0. person_source_value stays empty: a source patient id is an identifier.
INSERT INTO cdm.person BY NAME
WITH ranked AS (
    SELECT x.person_id, p.*, p.source_system IN (SELECT source_system FROM stg_enrollment) AS is_claims,
           row_number() OVER (PARTITION BY x.person_id
                              ORDER BY p.birth_date IS NULL, p._ingested_at DESC, p.source_system, p.source_person_id) AS pick
    FROM stg_person_source p JOIN crosswalk x USING (source_system, source_person_id)
)
SELECT CAST(r.person_id AS INTEGER) AS person_id,
       coalesce(g.concept_id, 0) AS gender_concept_id,
       year(r.birth_date) AS year_of_birth, month(r.birth_date) AS month_of_birth, day(r.birth_date) AS day_of_birth,
       r.birth_date::TIMESTAMP AS birth_datetime,
       CASE WHEN r.is_claims THEN CASE r.race_source_value WHEN '1' THEN $white WHEN '2' THEN $black ELSE 0 END
       ELSE CASE lower(r.race_source_value) WHEN 'white' THEN $white WHEN 'black' THEN $black
            WHEN 'black or african american' THEN $black WHEN 'asian' THEN $asian
            WHEN 'native' THEN $american_indian WHEN 'american indian or alaska native' THEN $american_indian
            WHEN 'hawaiian' THEN $pacific_islander WHEN 'native hawaiian or other pacific islander' THEN $pacific_islander
            ELSE 0 END END AS race_concept_id,
       CASE WHEN lower(r.ethnicity_source_value) IN ('hispanic', 'hispanic or latino')
                 OR r.is_claims AND r.race_source_value = '5' THEN $hispanic
            WHEN lower(r.ethnicity_source_value) IN ('nonhispanic', 'not hispanic or latino') THEN $not_hispanic
            ELSE 0 END AS ethnicity_concept_id,
       loc.id AS location_id,
       left(r.gender_source_value, 50) AS gender_source_value, 0 AS gender_source_concept_id,
       left(r.race_source_value, 50) AS race_source_value, 0 AS race_source_concept_id,
       left(r.ethnicity_source_value, 50) AS ethnicity_source_value, 0 AS ethnicity_source_concept_id
FROM ranked r
LEFT JOIN gender_map g ON g.source_value = lower(trim(r.gender_source_value)) AND (r.is_claims OR NOT g.claims_code)
LEFT JOIN us_state s ON lower(s.name) = lower(r.state) OR s.code = upper(r.state)
LEFT JOIN ids_location loc ON loc.natural_key = 'loc|' || concat_ws('|', coalesce(s.code, r.state, ''),
    coalesce(r.city, ''), coalesce(r.zip, ''), coalesce(r.county, ''))
WHERE r.pick = 1 AND r.birth_date IS NOT NULL
