-- Staged care sites -> CARE_SITE; the organization's own name is kept, its street is not.
INSERT INTO cdm.care_site BY NAME
SELECT i.id AS care_site_id, left(c.care_site_name, 255) AS care_site_name,
       0 AS place_of_service_concept_id, loc.id AS location_id,
       left(c.care_site_key, 50) AS care_site_source_value
FROM stg_care_site c
JOIN ids_care_site i ON i.natural_key = c.source_system || '|' || c.care_site_key
LEFT JOIN us_state s ON lower(s.name) = lower(c.state) OR s.code = upper(c.state)
LEFT JOIN ids_location loc ON loc.natural_key = 'loc|' || concat_ws('|', coalesce(s.code, c.state, ''),
    coalesce(c.city, ''), coalesce(c.zip, ''), '')
