-- Staged visits of linked persons, as the visit rollup takes them (keys qualified by source system).
CREATE OR REPLACE TEMP TABLE visit_input AS
SELECT v.source_system || '|' || v.record_key AS visit_key, x.person_id, v.visit_class,
       v.start_datetime, v.end_datetime, v.source_system,
       v.source_system || '|' || v.provider_key AS provider_key,
       v.source_system || '|' || v.care_site_key AS care_site_key,
       v.source_value, v.claim_type
FROM stg_visit v JOIN crosswalk x USING (source_system, source_person_id)
