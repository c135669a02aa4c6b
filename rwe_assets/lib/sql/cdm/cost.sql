-- Staged cost -> COST. Each row is linked to the CDM row of what it pays for: a staged event -> the
-- row its code was routed to (cost_domain_id = that table's domain; when the code maps to several
-- concepts, the first of its rows), a staged visit -> the VISIT_OCCURRENCE it became part of ('Visit').
-- payer_plan_period_id: the person's period covering the cost date (periods of a person are disjoint).
-- Type: pharmacy claim for fills, claim otherwise. Currency: US dollars, for which the bundled
-- vocabulary has no concept: NULL. Rows whose event or visit did not reach the CDM (its person is not
-- linked) are left out and counted in results.reconciliation.
-- At scale the file runs a part at a time (lib/cdm/intermediates.py PARTS: at 1M persons the joins ran
-- out of memory in one piece): a cost line's part is its event key's, else its own key's; an event's,
-- its record key's. So each part's lines find their events in the same part.
CREATE OR REPLACE TEMP TABLE cost_target AS
WITH event_ids AS (
    SELECT natural_key, id, 'Condition' AS domain_id FROM ids_condition_occurrence
    UNION ALL SELECT natural_key, id, 'Drug' FROM ids_drug_exposure
    UNION ALL SELECT natural_key, id, 'Procedure' FROM ids_procedure_occurrence
    UNION ALL SELECT natural_key, id, 'Measurement' FROM ids_measurement
    UNION ALL SELECT natural_key, id, 'Observation' FROM ids_observation
    UNION ALL SELECT natural_key, id, 'Device' FROM ids_device_exposure
)
SELECT m.source_system, m.record_key AS event_key, m.person_id, m.claim_type,
       arg_min(i.id, i.id) AS event_id, arg_min(i.domain_id, i.id) AS domain_id
FROM mapped_event m JOIN event_ids i USING (natural_key)
-- only events a cost row points at (claims lines), not every event of every source
SEMI JOIN (SELECT DISTINCT source_system, event_key FROM stg_cost
           WHERE event_key IS NOT NULL AND hash(event_key) % $parts = $part) c
    ON c.source_system = m.source_system AND c.event_key = m.record_key
WHERE hash(m.record_key) % $parts = $part
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE cost_input AS
SELECT c.*, coalesce(t.person_id, v.person_id) AS person_id,
       coalesce(t.event_id, v.visit_occurrence_id) AS cost_event_id,
       coalesce(t.domain_id, CASE WHEN v.visit_occurrence_id IS NOT NULL THEN 'Visit' END) AS cost_domain_id,
       t.claim_type AS event_claim_type
FROM stg_cost c
-- Equality only in the join conditions (a NULL key matches nothing), so DuckDB hash-joins; an
-- `IS NULL` test in ON makes it fall back to a nested-loop join (minutes at 10k persons).
LEFT JOIN cost_target t ON t.source_system = c.source_system AND t.event_key = c.event_key
LEFT JOIN visit_link v
    ON v.visit_key = CASE WHEN c.event_key IS NULL THEN c.source_system || '|' || c.visit_key END
WHERE hash(coalesce(c.event_key, c.record_key)) % $parts = $part;

INSERT INTO cdm.cost BY NAME
SELECT i.id AS cost_id, c.cost_event_id, c.cost_domain_id,
       CASE WHEN c.event_claim_type = 'pharmacy' THEN $type_pharmacy_claim ELSE $type_claim END AS cost_type_concept_id,
       NULL AS currency_concept_id,
       c.total_charge, c.total_cost, c.total_paid, c.paid_by_payer, c.paid_by_patient,
       c.paid_patient_copay, c.paid_patient_coinsurance, c.paid_patient_deductible, c.paid_by_primary, c.amount_allowed,
       p.payer_plan_period_id, left(c.drg_source_value, 3) AS drg_source_value
FROM cost_input c
JOIN ids_cost i ON i.natural_key = c.source_system || '|' || c.record_key
LEFT JOIN cdm.payer_plan_period p
    ON p.person_id = c.person_id AND c.cost_date BETWEEN p.payer_plan_period_start_date AND p.payer_plan_period_end_date
WHERE c.cost_event_id IS NOT NULL
