INSERT INTO cdm.location BY NAME
SELECT i.id AS location_id, l.city, l.state, l.zip, l.county,
       left(l.natural_key, 50) AS location_source_value
FROM location_input l JOIN ids_location i USING (natural_key)
