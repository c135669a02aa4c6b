-- FHIR R4 Coverage -> staging.enrollment, one span per Coverage (the CDM merges spans by calendar month
-- into PAYER_PLAN_PERIOD, cdm/payer_plan_period.sql).
-- source_person_id: beneficiary (the person covered; the subscriber may be another family member).
-- start/end: period.start / period.end as local dates. A Coverage without period.end is in force: it
--   runs to the date its file was ingested (the latest day the source vouches for), or to the
--   beneficiary's death (Patient.deceasedDateTime, latest version) when that comes first; a span
--   starting after death is DEATH_BEFORE_ENROLLMENT (as the synthea_csv profile).
-- payer_source_value: the first payor's identifier.value, else its reference id, else its display.
-- plan_source_value: class[] of type 'plan' -> its value, else NULL.
-- record_key: 'Coverage/<id>'.
-- Rules: status entered-in-error -> ENTERED_IN_ERROR, cancelled -> CANCELLED, draft -> PLANNED (status
--   reasons); MISSING_PERSON; MISSING_PAYER (no payor); NOT_INSURED (self-pay: type code 'pay', or the
--   payor is the patient or a related person: no plan period for time without cover); INVALID_DATE
--   (period.start missing or unparseable, period.end unparseable); END_BEFORE_START.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR",
            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR"}]},
            "beneficiary": {"reference": "VARCHAR"},
            "period": {"start": "VARCHAR", "end": "VARCHAR"},
            "payor": [{"reference": "VARCHAR", "display": "VARCHAR", "identifier": {"value": "VARCHAR"}}],
            "class": [{"type": {"coding": [{"code": "VARCHAR"}]}, "value": "VARCHAR"}]
        }') AS r
    FROM raw_coverage
),
deaths AS (
    SELECT rwe_text(resource_id) AS person,
           rwe_date(from_json(resource_json, '{"deceasedDateTime": "VARCHAR"}').deceasedDateTime) AS death_date
    FROM raw_patient
    QUALIFY row_number() OVER (PARTITION BY rwe_text(resource_id) ORDER BY _ingested_at DESC, _line_number DESC) = 1
),
spans AS (
    SELECT src.*,
        rwe_fhir_ref(r.beneficiary.reference) AS person_ref,
        r.payor[1] AS payor,
        rwe_date(r.period.start) AS start_date,
        least(coalesce(rwe_date(r.period."end"), _ingested_at::DATE), d.death_date) AS end_date,
        d.death_date
    FROM src LEFT JOIN deaths d ON d.person = rwe_fhir_ref(r.beneficiary.reference)
)
SELECT
    $source AS source_system,
    'Coverage/' || rwe_text(resource_id) AS record_key,
    'coverage' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    person_ref AS source_person_id,
    start_date,
    end_date,
    coalesce(rwe_text(payor.identifier.value), rwe_fhir_ref(payor.reference), rwe_text(payor.display)) AS payer_source_value,
    rwe_text(list_filter(r.class, c -> list_contains(list_transform(c.type.coding, t -> t.code), 'plan'))[1].value)
        AS plan_source_value,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status],
                                [{'code': 'cancelled', 'reason': 'CANCELLED'}, {'code': 'draft', 'reason': 'PLANNED'}]),
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': 'beneficiary', 'failed': person_ref IS NULL},
            {'reason': 'MISSING_PAYER', 'field': 'payor',
             'failed': coalesce(rwe_text(payor.identifier.value), rwe_fhir_ref(payor.reference), rwe_text(payor.display)) IS NULL},
            {'reason': 'NOT_INSURED', 'field': 'type',
             'failed': list_contains(list_transform(r.type.coding, c -> rwe_text(c.code)), 'pay')
                       OR regexp_matches(coalesce(payor.reference, ''), '(^|/)(Patient|RelatedPerson)/')},
            {'reason': 'INVALID_DATE', 'field': 'period.start', 'failed': start_date IS NULL},
            {'reason': 'INVALID_DATE', 'field': 'period.end', 'failed': rwe_bad_ts(r.period."end")},
            {'reason': 'DEATH_BEFORE_ENROLLMENT', 'field': 'period.start', 'failed': death_date < start_date},
            {'reason': 'END_BEFORE_START', 'field': 'period.end', 'failed': end_date < start_date}
        ])
    ) AS _failure
FROM spans
