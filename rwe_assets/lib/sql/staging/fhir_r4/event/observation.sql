-- FHIR R4 Observation -> staging.event ('measurement'; MEASUREMENT or OBSERVATION is decided later by
-- the mapped concept's domain). Codes: code.coding, chosen as in _macros.sql (LOINC in Synthea).
-- Not an _events.yaml entry: one raw line gives a row per component (an unnest before the codes, a
-- '#i' record key, values and a value code per part), a shape _event_template.sql does not have.
--
-- Components: an Observation with a non-empty `component` array (blood pressure 85354-9 with systolic
-- 8480-6 and diastolic 8462-4; SDOH screening panels) gives ONE ROW PER COMPONENT: the component's
-- code and value, the parent's subject, encounter, dates and performer; record_key
-- 'Observation/<id>#<i>' with i the 0-based position in `component` (as in FHIRPath component[i]).
-- The parent's own code (the panel) and any top-level value are then not staged. An Observation
-- without components gives one row, record_key 'Observation/<id>'.
-- NOTE for reconciliation: such a raw line yields n candidate rows, so build.py's "raw rows = staged +
-- quarantined + merged" over-counts by n - 1 for this entity until the framework counts fan-out.
--
-- Values: valueQuantity.value (or valueInteger) -> value_as_number, unit = valueQuantity.code (UCUM)
--   else valueQuantity.unit; valueString, valueCodeableConcept (display, else text, else code),
--   valueBoolean and valueDateTime -> value_as_string. A valueCodeableConcept's coding, chosen as the
--   event's code is (_macros.sql), is also staged as value_code and value_vocabulary_id: the CDM build
--   maps it like any code, to value_as_concept_id. A valueQuantity.value that is not a number is
--   INVALID_NUMBER.
-- start: effectiveDateTime, else effectivePeriod.start, else effectiveInstant; end: effectivePeriod.end.
-- provider_key: the first performer. Rules: id, subject, code, parseable start; end not before start;
--   status 'entered-in-error' -> ENTERED_IN_ERROR, 'cancelled' -> CANCELLED, 'registered' -> PLANNED
--   (no result yet).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR",
            "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "encounter": {"reference": "VARCHAR"},
            "performer": [{"reference": "VARCHAR"}],
            "effectiveDateTime": "VARCHAR", "effectivePeriod": {"start": "VARCHAR", "end": "VARCHAR"},
            "effectiveInstant": "VARCHAR",
            "valueQuantity": {"value": "VARCHAR", "unit": "VARCHAR", "code": "VARCHAR"},
            "valueCodeableConcept": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "valueString": "VARCHAR", "valueBoolean": "VARCHAR", "valueInteger": "VARCHAR", "valueDateTime": "VARCHAR",
            "component": [{
                "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
                "valueQuantity": {"value": "VARCHAR", "unit": "VARCHAR", "code": "VARCHAR"},
                "valueCodeableConcept": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
                "valueString": "VARCHAR", "valueBoolean": "VARCHAR", "valueInteger": "VARCHAR", "valueDateTime": "VARCHAR"
            }]
        }') AS r
    FROM raw_observation
),
parts AS (  -- one part per component (idx: its 0-based position), or the observation itself (idx NULL)
    SELECT *,
        unnest(CASE WHEN len(r.component) > 0
            THEN list_transform(r.component, (p, i) -> struct_insert(p, idx := i - 1))
            ELSE [{'code': r.code, 'valueQuantity': r.valueQuantity, 'valueCodeableConcept': r.valueCodeableConcept,
                   'valueString': r.valueString, 'valueBoolean': r.valueBoolean, 'valueInteger': r.valueInteger,
                   'valueDateTime': r.valueDateTime, 'idx': NULL::BIGINT}]
        END) AS part
    FROM src
),
coded AS (
    SELECT *, rwe_fhir_codings(part.code.coding) AS codings,
        rwe_fhir_codings(part.valueCodeableConcept.coding) AS value_codings
    FROM parts
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_pick_coding(value_codings) AS value_coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.encounter.reference) AS visit_ref,
        rwe_fhir_ref(r.performer[1].reference) AS provider_ref,
        coalesce(rwe_text(r.effectiveDateTime), rwe_text(r.effectivePeriod.start), rwe_text(r.effectiveInstant))
            AS start_text,
        rwe_text(r.effectivePeriod."end") AS end_text
    FROM coded
)
SELECT
    $source AS source_system,
    'Observation/' || rwe_text(resource_id) || coalesce('#' || part.idx, '') AS record_key,
    'observation' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    'measurement' AS event_kind,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    rwe_ts_end(start_text, end_text) AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(part.code.text)) AS code_description,
    coalesce(rwe_num(part.valueQuantity.value), rwe_num(part.valueInteger)) AS value_as_number,
    coalesce(rwe_text(part.valueString),
             rwe_text(part.valueCodeableConcept.coding[1].display),
             rwe_text(part.valueCodeableConcept.text),
             rwe_text(part.valueCodeableConcept.coding[1].code),
             rwe_text(part.valueBoolean),
             rwe_text(part.valueDateTime)) AS value_as_string,
    coalesce(rwe_text(part.valueQuantity.code), rwe_text(part.valueQuantity.unit)) AS unit_source_value,
    NULL AS quantity, NULL AS days_supply,
    provider_ref AS provider_key,
    value_coding.code AS value_code,
    value_coding.vocabulary_id AS value_vocabulary_id,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'cancelled', 'reason': 'CANCELLED'}, {'code': 'registered', 'reason': 'PLANNED'}]),
        rwe_fhir_event_failure('subject', person_ref,
                               CASE WHEN part.idx IS NULL THEN 'code' ELSE 'component.code' END, coding.code,
                               'effective[x]', start_text, 'effectivePeriod.end', end_text),
        rwe_first_failure([
            {'reason': 'INVALID_NUMBER', 'field': 'valueQuantity.value', 'failed': rwe_bad_num(part.valueQuantity.value)}
        ])
    ) AS _failure
FROM picked
