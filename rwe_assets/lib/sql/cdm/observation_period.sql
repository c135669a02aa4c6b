-- observation_period: one period per person spanning all their recorded events, or, for persons with
-- enrollment records, their merged enrollment spans.
--
-- Event span (build_observation_period, and persons without enrollment in the enrollment variant):
-- per person, one period from the earliest to the latest event date found in visit_occurrence
-- (visit_start_date, visit_end_date), condition_occurrence (condition_start_date, condition_end_date),
-- drug_exposure (drug_exposure_start_date, drug_exposure_end_date), procedure_occurrence (procedure_date,
-- procedure_end_date), device_exposure (device_exposure_start_date, device_exposure_end_date),
-- measurement (measurement_date), observation (observation_date) and death (death_date). End dates count
-- as event dates; a missing end date is replaced by its start date, and a row whose end lies before its
-- start contributes both dates. A person with a single event date, such as a death date only, gets a
-- one-day period (start = end). Persons with no event get no period. Periods end at death: events
-- recorded after a death (Synthea's death-certification visit, say) stay in their tables, where the
-- DQD plausibleDuringLife / plausibleBeforeDeath checks flag them, but do not extend observation.
-- period_type_concept_id is the bound parameter $period_type_concept_id (the caller's Type Concept).
--
-- Enrollment variant (build_observation_period_with_enrollment): for every person with at least one row
-- in the enrollment table (payer_plan_period columns person_id, payer_plan_period_start_date,
-- payer_plan_period_end_date), the periods are the enrollment spans merged per person: spans sorted by
-- start are merged while the next start minus the latest end seen so far is at most $enrollment_gap days
-- (32 by default), so overlapping, contiguous and short-gap spans join and a gap of more than 32 days starts
-- a new period. Their events are not used to extend or invent coverage; event rows of enrolled persons
-- whose start date falls outside every merged span are counted and returned. Persons without enrollment
-- get the event span. Enrollment periods carry $enrollment_period_type_concept_id. Spans are merged with
-- the same gaps-and-islands as the eras (sort by start only, ROWS running max of the previous ends, RANGE
-- running sum of the "opens a period" flags so spans sharing a start date share a period).
--
-- Combined variant (build_observation_period_with_enrollment with combine_event_span): for an enrolled
-- person, the enrollment spans and the span of their EHR events (earliest to latest event whose type is
-- not one of $claim_type_concept_ids, ended at death as above) are merged by the same gap rule: a person
-- is observed while enrolled (ETL-CMS) or inside the span an EHR saw them (the EHR rule). Claims events
-- never form a span of their own for an enrolled person, so enrollment gaps stay gaps unless an EHR saw
-- the person across them. A merged period holding any enrollment span carries
-- $enrollment_period_type_concept_id, one made only of the EHR span $period_type_concept_id. Persons
-- without enrollment get the event span of all their events.
--
-- observation_period_id = row_number() over (person_id, period start): the table is fully derived and
-- rebuilt on every run, so ids are stable for identical input but not across input changes.
-- Placeholders: {schema} and {enrollment} are quoted identifiers, {events} and {event_periods} inline the
-- sections of those names, $name are bound parameters.

-- name: events
SELECT person_id, visit_start_date AS start_date, visit_end_date AS end_date,
    visit_type_concept_id AS type_concept_id
FROM {schema}.visit_occurrence
UNION ALL
SELECT person_id, condition_start_date, condition_end_date, condition_type_concept_id
FROM {schema}.condition_occurrence
UNION ALL
SELECT person_id, drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id
FROM {schema}.drug_exposure
UNION ALL
SELECT person_id, procedure_date, procedure_end_date, procedure_type_concept_id
FROM {schema}.procedure_occurrence
UNION ALL
SELECT person_id, device_exposure_start_date, device_exposure_end_date, device_type_concept_id
FROM {schema}.device_exposure
UNION ALL
SELECT person_id, measurement_date, NULL, measurement_type_concept_id
FROM {schema}.measurement
UNION ALL
SELECT person_id, observation_date, NULL, observation_type_concept_id
FROM {schema}.observation
UNION ALL
SELECT person_id, death_date, NULL, death_type_concept_id
FROM {schema}.death

-- name: event_periods
SELECT
    spans.person_id,
    least(spans.start_date, coalesce(d.death_date, spans.start_date)) AS start_date,
    least(spans.end_date, coalesce(d.death_date, spans.end_date)) AS end_date
FROM (
    SELECT
        person_id,
        min(least(start_date, coalesce(end_date, start_date))) AS start_date,
        max(greatest(start_date, coalesce(end_date, start_date))) AS end_date
    FROM {events} AS ev
    GROUP BY person_id
) AS spans
LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM {schema}.death GROUP BY person_id) AS d
    ON d.person_id = spans.person_id

-- name: delete
DELETE FROM {schema}.observation_period

-- name: insert_event_periods
INSERT INTO {schema}.observation_period (
    observation_period_id,
    person_id,
    observation_period_start_date,
    observation_period_end_date,
    period_type_concept_id
)
SELECT
    CAST(row_number() OVER (ORDER BY person_id, start_date) AS INTEGER),
    person_id,
    start_date,
    end_date,
    $period_type_concept_id
FROM {event_periods} AS ep

-- name: count_events_outside_enrollment
-- Run after insert_enrollment_periods: for enrolled persons observation_period holds the merged spans,
-- which are disjoint, so the span starting last on or before an event date is the only candidate.
WITH enrolled_events AS (
    SELECT ev.person_id, ev.start_date
    FROM {events} AS ev
    SEMI JOIN {enrollment} AS enrollment ON enrollment.person_id = ev.person_id
)
SELECT count(*)
FROM enrolled_events AS ev
ASOF LEFT JOIN {schema}.observation_period AS op
    ON ev.person_id = op.person_id AND ev.start_date >= op.observation_period_start_date
WHERE op.observation_period_end_date IS NULL OR ev.start_date > op.observation_period_end_date

-- name: ehr_event_periods
SELECT
    spans.person_id,
    least(spans.start_date, coalesce(d.death_date, spans.start_date)) AS start_date,
    least(spans.end_date, coalesce(d.death_date, spans.end_date)) AS end_date
FROM (
    SELECT
        person_id,
        min(least(start_date, coalesce(end_date, start_date))) AS start_date,
        max(greatest(start_date, coalesce(end_date, start_date))) AS end_date
    FROM {events} AS ev
    WHERE NOT list_contains($claim_type_concept_ids, ev.type_concept_id)
    GROUP BY person_id
) AS spans
LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM {schema}.death GROUP BY person_id) AS d
    ON d.person_id = spans.person_id

-- name: insert_enrollment_periods
INSERT INTO {schema}.observation_period (
    observation_period_id,
    person_id,
    observation_period_start_date,
    observation_period_end_date,
    period_type_concept_id
)
WITH spans AS (
    SELECT
        person_id,
        payer_plan_period_start_date AS start_date,
        greatest(payer_plan_period_end_date, payer_plan_period_start_date) AS end_date,
        1 AS enrolled
    FROM {enrollment}
    UNION ALL
    SELECT ep.person_id, ep.start_date, ep.end_date, 0 AS enrolled
    FROM {ehr_event_periods} AS ep
    WHERE $combine_event_span AND ep.person_id IN (SELECT person_id FROM {enrollment})
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
        sum(CASE WHEN previous_end IS NULL OR start_date - previous_end > $enrollment_gap THEN 1 ELSE 0 END)
            OVER (PARTITION BY person_id ORDER BY start_date)
            AS period_number
    FROM flagged
),
periods AS (
    SELECT
        person_id,
        min(start_date) AS start_date,
        max(end_date) AS end_date,
        CASE WHEN max(enrolled) = 1 THEN $enrollment_period_type_concept_id ELSE $period_type_concept_id END
            AS period_type_concept_id
    FROM islands
    GROUP BY person_id, period_number
    UNION ALL
    SELECT person_id, start_date, end_date, $period_type_concept_id AS period_type_concept_id
    FROM {event_periods} AS ep
    WHERE NOT EXISTS (SELECT 1 FROM {enrollment} AS enrollment WHERE enrollment.person_id = ep.person_id)
)
SELECT
    CAST(row_number() OVER (ORDER BY person_id, start_date) AS INTEGER),
    person_id,
    start_date,
    end_date,
    period_type_concept_id
FROM periods
