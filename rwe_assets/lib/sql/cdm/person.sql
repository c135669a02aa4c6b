-- Linked persons -> PERSON, by a rule that does not depend on the order files were ingested in
-- (docs/data-formats.md, "Persons"). Re-sending a file changes only the persons whose records it changes.
--
-- Every staged person record (staging.person_source) belongs to the person_id the linkage crosswalk
-- gives it (crosswalk_all: the crosswalk as linkage wrote it). When several records describe one
-- person, each attribute comes from the first record, in this order, that states it:
--   birth (year, month, day together): the most complete birth date (full date, then year and month,
--     then year only), then as below;
--   gender, race, ethnicity, location (city, state, ZIP, county together):
--     1. the record's own date, latest first: when the source last stated it (record_updated: FHIR
--        meta.lastUpdated, the DE-SynPUF file year, the lab's latest specimen) or, where the source
--        states none (Synthea CSV), the start of the person's latest visit in that source;
--     2. the source's person_priority in the registry (sources.yaml; 1 first, none last);
--     3. source system, then source person id (so ties still resolve the same way every time).
-- Ingest time plays no part. Persons none of whose records gives a year of birth are left out of
-- PERSON (OMOP requires year_of_birth) and recorded in results.person_exclusion as NO_YEAR_OF_BIRTH;
-- the view `crosswalk` every later step joins leaves them out too, so none of their rows reach any
-- CDM table, and results.reconciliation counts those rows as excluded (lib/cdm/build.py).
-- month_of_birth / day_of_birth are NULL when the chosen date does not give them; birth_datetime is
-- set only for a full date.
-- Gender through gender_map, the mapping provider.sql defines for PROVIDER and PERSON alike (Synthea
-- F/M, FHIR female/male, claims 1/2 for sources of kind claims), anything else 0 with the source value
-- kept; race and ethnicity likewise. DE-SynPUF codes (sources with enrollment): sex 1 male, 2 female;
-- race 1 white, 2 black, 5 Hispanic (an ethnicity), 3 other: 0. person_source_value stays empty: a
-- source patient id is an identifier.
CREATE OR REPLACE TEMP TABLE person_pick AS
WITH last_visit AS (
    -- only for sources that state no record date of their own
    SELECT source_system, source_person_id, max(start_datetime) AS last_visit
    FROM stg_visit
    WHERE source_system IN (SELECT source_system FROM stg_person_source WHERE record_updated IS NULL)
    GROUP BY ALL
),
records AS (
    SELECT x.person_id, p.*,
           p.source_system IN (SELECT source_system FROM source_kind WHERE kind = 'claims') AS is_claims,
           CASE WHEN p.birth_date IS NOT NULL THEN 3 WHEN p.birth_month IS NOT NULL THEN 2
                WHEN p.birth_year IS NOT NULL THEN 1 ELSE 0 END AS birth_precision,
           row_number() OVER (PARTITION BY x.person_id
                              ORDER BY coalesce(p.record_updated, v.last_visit) DESC NULLS LAST,
                                       coalesce(sp.person_priority, 2147483647), p.source_system,
                                       p.source_person_id) AS rank
    FROM stg_person_source p
    JOIN crosswalk_all x USING (source_system, source_person_id)
    LEFT JOIN last_visit v USING (source_system, source_person_id)
    LEFT JOIN source_priority sp USING (source_system)
),
mapped AS (
    -- birth: precision first, then the rank (one integer key, so arg_min needs no sort)
    SELECT r.person_id, r.rank, (3 - r.birth_precision) * 1000000000::BIGINT + r.rank AS birth_rank,
           {'year': coalesce(year(r.birth_date), r.birth_year), 'month': coalesce(month(r.birth_date), r.birth_month),
            'full_date': r.birth_date} AS birth,
           r.gender_source_value, coalesce(g.concept_id, 0) AS gender_concept_id,
           r.race_source_value,
           CASE WHEN r.is_claims THEN CASE r.race_source_value WHEN '1' THEN $white WHEN '2' THEN $black ELSE 0 END
           ELSE CASE lower(r.race_source_value) WHEN 'white' THEN $white WHEN 'black' THEN $black
                WHEN 'black or african american' THEN $black WHEN 'asian' THEN $asian
                WHEN 'native' THEN $american_indian WHEN 'american indian or alaska native' THEN $american_indian
                WHEN 'hawaiian' THEN $pacific_islander WHEN 'native hawaiian or other pacific islander' THEN $pacific_islander
                ELSE 0 END END AS race_concept_id,
           r.ethnicity_source_value,
           CASE WHEN lower(r.ethnicity_source_value) IN ('hispanic', 'hispanic or latino')
                     OR r.is_claims AND r.race_source_value = '5' THEN $hispanic
                WHEN lower(r.ethnicity_source_value) IN ('nonhispanic', 'not hispanic or latino') THEN $not_hispanic
                ELSE 0 END AS ethnicity_concept_id,
           coalesce(r.city, r.state, r.zip, r.county) IS NOT NULL AS states_location,
           loc.id AS location_id
    FROM records r
    LEFT JOIN gender_map g ON g.source_value = lower(trim(r.gender_source_value)) AND (r.is_claims OR NOT g.claims_code)
    LEFT JOIN us_state s ON lower(s.name) = lower(r.state) OR s.code = upper(r.state)
    LEFT JOIN ids_location loc ON loc.natural_key = 'loc|' || concat_ws('|', coalesce(s.code, r.state, ''),
        coalesce(r.city, ''), coalesce(r.zip, ''), coalesce(r.county, ''))
)
SELECT person_id,
       arg_min(birth, birth_rank) AS birth,
       arg_min({'concept_id': gender_concept_id, 'value': gender_source_value}, rank)
           FILTER (WHERE gender_source_value IS NOT NULL) AS gender,
       arg_min({'concept_id': race_concept_id, 'value': race_source_value}, rank)
           FILTER (WHERE race_source_value IS NOT NULL) AS race,
       arg_min({'concept_id': ethnicity_concept_id, 'value': ethnicity_source_value}, rank)
           FILTER (WHERE ethnicity_source_value IS NOT NULL OR ethnicity_concept_id <> 0) AS ethnicity,
       arg_min({'id': location_id}, rank) FILTER (WHERE states_location) AS location
FROM mapped GROUP BY person_id;

CREATE OR REPLACE TABLE results.person_exclusion AS
SELECT person_id, 'NO_YEAR_OF_BIRTH' AS reason_code FROM person_pick WHERE birth.year IS NULL;

CREATE OR REPLACE TEMP VIEW crosswalk AS
SELECT * FROM crosswalk_all
WHERE person_id NOT IN (SELECT person_id FROM results.person_exclusion WHERE reason_code = 'NO_YEAR_OF_BIRTH');

INSERT INTO cdm.person BY NAME
SELECT CAST(person_id AS INTEGER) AS person_id,
       coalesce(gender.concept_id, 0) AS gender_concept_id,
       birth.year AS year_of_birth, birth.month AS month_of_birth, day(birth.full_date) AS day_of_birth,
       birth.full_date::TIMESTAMP AS birth_datetime,
       coalesce(race.concept_id, 0) AS race_concept_id,
       coalesce(ethnicity.concept_id, 0) AS ethnicity_concept_id,
       location.id AS location_id,
       left(gender.value, 50) AS gender_source_value, 0 AS gender_source_concept_id,
       left(race.value, 50) AS race_source_value, 0 AS race_source_concept_id,
       left(ethnicity.value, 50) AS ethnicity_source_value, 0 AS ethnicity_source_concept_id
FROM person_pick
WHERE birth.year IS NOT NULL
