-- Locations: the distinct (city, state, ZIP, county) of persons and care sites. Street lines are
-- never staged, so never here. State names become USPS codes (LOCATION.state is 2 characters); ZIP
-- keeps its first 9 characters; county its first 20 (OMOP field lengths).
CREATE OR REPLACE TEMP TABLE location_input AS
WITH places AS (
    SELECT city, state, zip, county FROM stg_person_source
    UNION ALL
    SELECT city, state, zip, NULL FROM stg_care_site
)
SELECT DISTINCT
       coalesce(s.code, CASE WHEN length(p.state) = 2 THEN upper(p.state) END) AS state,
       left(p.city, 50) AS city, left(p.zip, 9) AS zip, left(p.county, 20) AS county,
       'loc|' || concat_ws('|', coalesce(s.code, p.state, ''), coalesce(p.city, ''), coalesce(p.zip, ''),
                           coalesce(p.county, '')) AS natural_key
FROM places p LEFT JOIN us_state s ON lower(s.name) = lower(p.state) OR s.code = upper(p.state)
WHERE coalesce(p.city, p.state, p.zip, p.county) IS NOT NULL
