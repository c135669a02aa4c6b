-- Merged enrollment periods (payer_plan_period.sql) -> PAYER_PLAN_PERIOD, ids from the id map.
INSERT INTO cdm.payer_plan_period BY NAME
SELECT i.id AS payer_plan_period_id, CAST(s.person_id AS INTEGER) AS person_id,
       s.start_date AS payer_plan_period_start_date, s.end_date AS payer_plan_period_end_date,
       0 AS payer_concept_id, left(s.payer_source_value, 50) AS payer_source_value, 0 AS payer_source_concept_id,
       0 AS plan_concept_id, left(s.plan_source_value, 50) AS plan_source_value, 0 AS plan_source_concept_id
FROM payer_plan_span s JOIN ids_payer_plan_period i USING (natural_key)
