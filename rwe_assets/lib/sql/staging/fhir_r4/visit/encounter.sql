-- FHIR R4 Encounter -> staging.visit
-- visit_class from Encounter.class.code (v3 ActCode): IMP and its specializations ACUTE and NONAC
--   (inpatient acute / non-acute; ValueSet v3-ActInpatientEncounterCode) -> inpatient, EMER -> emergency,
--   AMB -> ambulatory, HH -> home, VR -> virtual, any other code lower-cased (e.g. 'obsenc'), none ->
--   'other'; source_value keeps the code as written.
-- code / vocabulary_id: the encounter type (codings of every Encounter.type; chosen as in
--   _macros.sql). Start/end: Encounter.period; a missing end stays NULL (the visit rollup treats
--   it as ending when it starts).
-- source_person_id, provider_key (first participant with an individual), care_site_key
--   (serviceProvider): the referenced id, normalized by rwe_fhir_ref (_macros.sql).
-- Rules: id, subject and a parseable period.start required; end not before start; an encounter
--   whose status is 'entered-in-error' (ENTERED_IN_ERROR), 'cancelled' (CANCELLED) or
--   'planned' (PLANNED) is retired, a status reason (README.md).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR",
            "class": {"system": "VARCHAR", "code": "VARCHAR"},
            "type": [{"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"}],
            "subject": {"reference": "VARCHAR"},
            "participant": [{"individual": {"reference": "VARCHAR"}}],
            "period": {"start": "VARCHAR", "end": "VARCHAR"},
            "serviceProvider": {"reference": "VARCHAR"}
        }') AS r
    FROM raw_encounter
),
coded AS (
    SELECT *, rwe_fhir_codings(flatten(list_transform(r.type, t -> t.coding))) AS codings FROM src
),
picked AS (
    SELECT *, rwe_fhir_pick_coding(codings) AS coding
    FROM coded
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'encounter' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    rwe_fhir_ref(r.subject.reference) AS source_person_id,
    CASE upper(rwe_text(r.class.code))
        WHEN 'IMP' THEN 'inpatient' WHEN 'ACUTE' THEN 'inpatient' WHEN 'NONAC' THEN 'inpatient'
        WHEN 'EMER' THEN 'emergency'
        WHEN 'AMB' THEN 'ambulatory'
        WHEN 'HH' THEN 'home'
        WHEN 'VR' THEN 'virtual'
        ELSE coalesce(lower(rwe_text(r.class.code)), 'other')
    END AS visit_class,
    rwe_ts(r.period.start) AS start_datetime,
    rwe_ts_end(r.period.start, r.period."end") AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    rwe_text(r.class.code) AS source_value,
    rwe_fhir_ref(list_filter(r.participant, p -> rwe_text(p.individual.reference) IS NOT NULL)[1]
        .individual.reference) AS provider_key,
    rwe_fhir_ref(r.serviceProvider.reference) AS care_site_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'cancelled', 'reason': 'CANCELLED'}, {'code': 'planned', 'reason': 'PLANNED'}]),
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': 'subject', 'failed': rwe_fhir_ref(r.subject.reference) IS NULL}
        ]),
        rwe_period_failure('period.start', r.period.start, 'period.end', r.period."end")
    ) AS _failure
FROM picked
