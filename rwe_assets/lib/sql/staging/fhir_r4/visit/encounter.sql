-- FHIR R4 Encounter -> staging.visit
-- visit_class from Encounter.class.code (v3 ActCode): IMP -> inpatient, EMER -> emergency,
--   AMB -> ambulatory, HH -> home, VR -> virtual, any other code lower-cased (e.g. 'obsenc'), none ->
--   'other'; source_value keeps the code as written.
-- code / vocabulary_id: the encounter type (codings of every Encounter.type; chosen as in
--   _macros.sql). Start/end: Encounter.period; a missing end stays NULL (the visit rollup treats
--   it as ending when it starts).
-- source_person_id, provider_key (first participant with an individual), care_site_key
--   (serviceProvider): the referenced id, normalized by rwe_fhir_ref (_macros.sql).
-- Rules: id, subject and a parseable period.start required; end not before start; an encounter
--   whose status is 'entered-in-error' is quarantined (ENTERED_IN_ERROR).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
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
    SELECT *,
        list_filter(list_transform(flatten(list_transform(r.type, t -> t.coding)), c -> {
            'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
            'vocabulary_id': rwe_fhir_vocabulary(c.system)
        }), c -> c.code IS NOT NULL) AS codings
    FROM src
),
picked AS (
    SELECT *, coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1]) AS coding
    FROM coded
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'encounter' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_ref(r.subject.reference) AS source_person_id,
    CASE upper(rwe_text(r.class.code))
        WHEN 'IMP' THEN 'inpatient'
        WHEN 'EMER' THEN 'emergency'
        WHEN 'AMB' THEN 'ambulatory'
        WHEN 'HH' THEN 'home'
        WHEN 'VR' THEN 'virtual'
        ELSE coalesce(lower(rwe_text(r.class.code)), 'other')
    END AS visit_class,
    rwe_ts(r.period.start) AS start_datetime,
    rwe_ts(r.period."end") AS end_datetime,
    coding.code AS code,
    coalesce(coding.vocabulary_id, coding.system) AS vocabulary_id,
    rwe_text(r.class.code) AS source_value,
    rwe_fhir_ref(list_filter(r.participant, p -> rwe_text(p.individual.reference) IS NOT NULL)[1]
        .individual.reference) AS provider_key,
    rwe_fhir_ref(r.serviceProvider.reference) AS care_site_key,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'ENTERED_IN_ERROR', 'field': 'status', 'failed': r.status = 'entered-in-error'},
        {'reason': 'MISSING_PERSON', 'field': 'subject',
         'failed': rwe_fhir_ref(r.subject.reference) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'period.start', 'failed': rwe_ts(r.period.start) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'period.end', 'failed': rwe_bad_ts(r.period."end")},
        {'reason': 'END_BEFORE_START', 'field': 'period.end', 'failed': rwe_ts(r.period."end") < rwe_ts(r.period.start)}
    ]) AS _failure
FROM picked
