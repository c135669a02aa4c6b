-- Spark variant of lib/sql/cdm/observation_period.sql as the build calls it (the enrollment rule with
-- the EHR span combined; the rule is in that file), which DuckDB runs as DELETE then INSERT with
-- `date - date` as a day count: here the table is made whole, day counts by datediff. The events, EHR
-- spans and event spans are that file's sections as temporary tables; the enrollment table is
-- cdm.payer_plan_period. The :values are bound by lib/spark/build.py (the DuckDB build's arguments), which
-- also logs the count below (the enrolled persons' events outside every period).
CREATE OR REPLACE TEMP TABLE spark_period_event AS
SELECT person_id, visit_start_date AS start_date, visit_end_date AS end_date,
    visit_type_concept_id AS type_concept_id
FROM cdm.visit_occurrence
UNION ALL
SELECT person_id, condition_start_date, condition_end_date, condition_type_concept_id
FROM cdm.condition_occurrence
UNION ALL
SELECT person_id, drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id
FROM cdm.drug_exposure
UNION ALL
SELECT person_id, procedure_date, procedure_end_date, procedure_type_concept_id
FROM cdm.procedure_occurrence
UNION ALL
SELECT person_id, device_exposure_start_date, device_exposure_end_date, device_type_concept_id
FROM cdm.device_exposure
UNION ALL
SELECT person_id, measurement_date, CAST(NULL AS DATE), measurement_type_concept_id
FROM cdm.measurement
UNION ALL
SELECT person_id, observation_date, CAST(NULL AS DATE), observation_type_concept_id
FROM cdm.observation
UNION ALL
SELECT person_id, death_date, CAST(NULL AS DATE), death_type_concept_id
FROM cdm.death;

CREATE OR REPLACE TEMP TABLE spark_period_span AS
WITH death AS (SELECT person_id, min(death_date) AS death_date FROM cdm.death GROUP BY person_id),
spans AS (
    SELECT
        person_id,
        ehr,
        min(least(start_date, coalesce(end_date, start_date))) AS start_date,
        max(greatest(start_date, coalesce(end_date, start_date))) AS end_date
    FROM (
        SELECT *, TRUE AS ehr FROM spark_period_event
        WHERE NOT array_contains(:claim_type_concept_ids, type_concept_id)
        UNION ALL
        SELECT *, FALSE AS ehr FROM spark_period_event
    ) AS ev
    GROUP BY person_id, ehr
)
SELECT
    spans.person_id,
    spans.ehr,
    least(spans.start_date, coalesce(d.death_date, spans.start_date)) AS start_date,
    least(spans.end_date, coalesce(d.death_date, spans.end_date)) AS end_date
FROM spans
LEFT JOIN death AS d ON d.person_id = spans.person_id;

CREATE OR REPLACE TABLE cdm.observation_period AS
WITH enrolled AS (SELECT DISTINCT person_id FROM cdm.payer_plan_period),
spans AS (
    SELECT
        person_id,
        payer_plan_period_start_date AS start_date,
        greatest(payer_plan_period_end_date, payer_plan_period_start_date) AS end_date,
        1 AS enrolled
    FROM cdm.payer_plan_period
    UNION ALL
    SELECT ep.person_id, ep.start_date, ep.end_date, 0 AS enrolled
    FROM spark_period_span AS ep
    WHERE ep.ehr AND :combine_event_span AND ep.person_id IN (SELECT person_id FROM enrolled)
),
flagged AS (
    SELECT
        *,
        max(end_date) OVER (
            PARTITION BY person_id
            ORDER BY start_date
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_end
    FROM spans
),
islands AS (
    SELECT
        *,
        sum(CASE WHEN previous_end IS NULL OR datediff(start_date, previous_end) > :enrollment_gap
            THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id ORDER BY start_date) AS period_number
    FROM flagged
),
periods AS (
    SELECT
        person_id,
        min(start_date) AS start_date,
        max(end_date) AS end_date,
        CASE WHEN max(enrolled) = 1 THEN :enrollment_period_type_concept_id ELSE :period_type_concept_id END
            AS period_type_concept_id
    FROM islands
    GROUP BY person_id, period_number
    UNION ALL
    SELECT person_id, start_date, end_date, :period_type_concept_id AS period_type_concept_id
    FROM spark_period_span AS ep
    WHERE NOT ep.ehr AND NOT EXISTS (SELECT 1 FROM enrolled WHERE enrolled.person_id = ep.person_id)
)
SELECT
    row_number() OVER (ORDER BY person_id, start_date) AS observation_period_id,
    person_id,
    start_date AS observation_period_start_date,
    end_date AS observation_period_end_date,
    period_type_concept_id
FROM periods;

-- count_events_outside_enrollment: the merged periods of an enrolled person are disjoint, so an event
-- outside every one of them is one the ASOF join of the DuckDB file finds no covering period for
SELECT count(*)
FROM spark_period_event AS ev
WHERE ev.person_id IN (SELECT person_id FROM cdm.payer_plan_period)
  AND NOT EXISTS (
      SELECT 1 FROM cdm.observation_period AS op
      WHERE op.person_id = ev.person_id
        AND ev.start_date BETWEEN op.observation_period_start_date AND op.observation_period_end_date
  );

DROP TABLE spark_period_event;

DROP TABLE spark_period_span;
