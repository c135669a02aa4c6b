-- Every staged visit -> VISIT_DETAIL, under the rolled-up VISIT_OCCURRENCE it became part of, so a
-- merged stay still shows each source encounter. visit_link lets events find both ids. Type: Claim for
-- a claim, EHR encounter record otherwise.
CREATE OR REPLACE TEMP TABLE visit_link AS
SELECT m.visit_key, vo.id AS visit_occurrence_id, vd.id AS visit_detail_id, p.id AS provider_id,
       cs.id AS care_site_id, vi.person_id, vi.visit_class, vi.start_datetime, vi.end_datetime, vi.source_value,
       vi.claim_type
FROM rollup_visit_map m
JOIN visit_input vi ON vi.visit_key = m.visit_key
JOIN ids_visit_occurrence vo ON vo.natural_key = m.visit_group_key
JOIN ids_visit_detail vd ON vd.natural_key = m.visit_key
LEFT JOIN ids_provider p ON p.natural_key = vi.provider_key
LEFT JOIN ids_care_site cs ON cs.natural_key = vi.care_site_key;

INSERT INTO cdm.visit_detail BY NAME
SELECT l.visit_detail_id, CAST(l.person_id AS INTEGER) AS person_id,
       CASE WHEN v.visit_concept_id IN (SELECT concept_id FROM cdm.concept) THEN v.visit_concept_id ELSE 0 END
           AS visit_detail_concept_id,
       l.start_datetime::DATE AS visit_detail_start_date, l.start_datetime AS visit_detail_start_datetime,
       coalesce(l.end_datetime, l.start_datetime)::DATE AS visit_detail_end_date,
       coalesce(l.end_datetime, l.start_datetime) AS visit_detail_end_datetime,
       CASE WHEN l.claim_type IS NULL THEN $type_ehr_encounter ELSE $type_claim END AS visit_detail_type_concept_id,
       l.provider_id, l.care_site_id, left(l.source_value, 50) AS visit_detail_source_value,
       0 AS visit_detail_source_concept_id, NULL AS admitted_from_concept_id, NULL AS discharged_to_concept_id,
       l.visit_occurrence_id
FROM visit_link l
JOIN rollup_visit_map m USING (visit_key)
JOIN rollup_visit v ON v.visit_group_key = m.visit_group_key
