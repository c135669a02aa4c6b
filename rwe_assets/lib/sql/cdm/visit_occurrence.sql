-- Rolled-up visits -> VISIT_OCCURRENCE (rules in visit_rollup.sql). Type: Claim when every source record
-- of the visit is a claim, else EHR encounter record (a stay both feeds saw is an EHR encounter).
-- admitted_from / discharged_to stay NULL: no source records them (0 would claim an unmapped value).
-- preceding_visit_occurrence_id: the person's previous visit by start (then id). A visit concept the
-- loaded vocabulary lacks (e.g. Telehealth in the demo subset) is written as 0; the source value stays.
INSERT INTO cdm.visit_occurrence BY NAME
SELECT i.id AS visit_occurrence_id, CAST(v.person_id AS INTEGER) AS person_id,
       CASE WHEN v.visit_concept_id IN (SELECT concept_id FROM cdm.concept) THEN v.visit_concept_id ELSE 0 END
           AS visit_concept_id,
       v.visit_start_date, v.visit_start_datetime, v.visit_end_date, v.visit_end_datetime,
       CASE WHEN k.all_claims THEN $type_claim ELSE $type_ehr_encounter END AS visit_type_concept_id,
       p.id AS provider_id, cs.id AS care_site_id,
       left(v.visit_source_value, 50) AS visit_source_value, 0 AS visit_source_concept_id,
       NULL AS admitted_from_concept_id, NULL AS discharged_to_concept_id,
       lag(i.id) OVER (PARTITION BY v.person_id ORDER BY v.visit_start_datetime, i.id) AS preceding_visit_occurrence_id
FROM rollup_visit v
JOIN ids_visit_occurrence i ON i.natural_key = v.visit_group_key
LEFT JOIN ids_provider p ON p.natural_key = v.provider_key
LEFT JOIN (SELECT m.visit_group_key, bool_and(vi.claim_type IS NOT NULL) AS all_claims
           FROM rollup_visit_map m JOIN visit_input vi USING (visit_key) GROUP BY ALL) k
    ON k.visit_group_key = v.visit_group_key
LEFT JOIN ids_care_site cs ON cs.natural_key = v.care_site_key
