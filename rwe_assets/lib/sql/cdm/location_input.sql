-- Locations: the distinct (city, state, ZIP, county) of persons and care sites. Street lines are
-- never staged, so never here. State names become USPS codes (LOCATION.state is 2 characters); county
-- keeps its first 20 characters (OMOP field length).
-- ZIP (LOCATION.zip is varchar(9)): the OMOP CDM v5.4 convention holds a US ZIP as 3 digits, the
--   5-digit ZIP or the 9-digit ZIP+4, so a ZIP+4 written 02108-4623 (or with a space) is stored as its
--   nine digits, 021084623, never cut to 02108-462. A 4-digit ZIP of a US state is a 5-digit ZIP
--   whose leading zero a spreadsheet or a number column dropped (Synthea's organizations.csv writes
--   1850 for Lowell, MA): stored as 01850. Any other value is trimmed and kept when it fits in 9
--   characters (a 5-digit ZIP, as ETL-Synthea copies it, or a foreign postcode); one longer than 9
--   that is not a ZIP+4 is NULL, not cut into a wrong code. The source text stays in the natural key,
--   so in location_source_value.
CREATE OR REPLACE TEMP TABLE location_input AS
WITH places AS (
    SELECT city, state, zip, county FROM stg_person_source
    UNION ALL
    SELECT city, state, zip, NULL FROM stg_care_site
),
resolved AS (
    SELECT p.*, s.code AS state_code, trim(p.zip) AS zip_text
    FROM places p LEFT JOIN us_state s ON lower(s.name) = lower(p.state) OR s.code = upper(p.state)
    WHERE coalesce(p.city, p.state, p.zip, p.county) IS NOT NULL
)
SELECT DISTINCT
       coalesce(r.state_code, CASE WHEN length(r.state) = 2 THEN upper(r.state) END) AS state,
       left(r.city, 50) AS city,
       CASE WHEN regexp_full_match(r.zip_text, '[0-9]{5}[- ]?[0-9]{4}') THEN regexp_replace(r.zip_text, '[- ]', '')
            WHEN regexp_full_match(r.zip_text, '[0-9]{4}') AND r.state_code IS NOT NULL THEN '0' || r.zip_text
            WHEN length(r.zip_text) BETWEEN 1 AND 9 THEN r.zip_text
       END AS zip,
       left(r.county, 20) AS county,
       -- the natural key is built from the source text (person.sql builds it the same way)
       'loc|' || concat_ws('|', coalesce(r.state_code, r.state, ''), coalesce(r.city, ''), coalesce(r.zip, ''),
                           coalesce(r.county, '')) AS natural_key
FROM resolved r
