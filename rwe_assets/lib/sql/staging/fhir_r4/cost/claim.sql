-- FHIR R4 Claim -> staging.cost, one row per Claim that no ExplanationOfBenefit adjudicates: what the
-- provider billed. total_charge = total_cost = Claim.total (else the sum of item[].net), as the
-- synthea_csv profile stages Synthea's claim cost; the paid columns stay NULL (a claim states no
-- payment). Linked to the drug event of its `prescription` (MedicationRequest/<id>, Synthea's
-- medication claims), else to the encounter of its items (the visit). cost_date: the items' service
-- date, else billablePeriod.start, else created (rwe_fhir_cost_date). record_key: 'Claim/<id>'.
-- A Claim that an ExplanationOfBenefit adjudicates (EOB.claim, the current version of each EOB id by
-- the lifecycle's rule, rwe_fhir_current_versions, unless that version is entered-in-error or draft: neither states an adjudication) is not staged: its
-- money is the EOB's row (cost/explanationofbenefit.sql), so an encounter is never costed twice. The
-- row retires with the status reason ADJUDICATED (README.md, *Claim, ExplanationOfBenefit, Coverage*).
-- Rules: status checks (rwe_fhir_cost_status_failure: ENTERED_IN_ERROR, CANCELLED, PLANNED),
--   ADJUDICATED, MISSING_PERSON (patient), MISSING_VISIT (neither prescription nor item.encounter:
--   nothing to attach the money to), INVALID_DATE, NO_AMOUNT, INVALID_NUMBER, NEGATIVE_AMOUNT,
--   UNSUPPORTED_CURRENCY (a currency other than USD: the CDM states dollars).
WITH eob_versions AS (
    SELECT rwe_text(resource_id) AS id, rwe_fhir_version_at(r.meta) AS version_at, r.status,
           rwe_fhir_adjudicated_claim(r) AS claim_id,
           _batch_id, _ingested_at, _source_file, _line_number
    FROM (SELECT *, from_json(resource_json, '{"meta": {"lastUpdated": "VARCHAR"}, "status": "VARCHAR",
                                               "claim": {"reference": "VARCHAR"}}') AS r
          FROM raw_explanationofbenefit)
),
adjudicated AS (
    SELECT DISTINCT claim_id
    FROM rwe_fhir_current_versions('eob_versions')
    WHERE coalesce(status, '') NOT IN ('entered-in-error', 'draft')
),
src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR", "use": "VARCHAR",
            "patient": {"reference": "VARCHAR"},
            "billablePeriod": {"start": "VARCHAR"}, "created": "VARCHAR",
            "prescription": {"reference": "VARCHAR"},
            "item": [{"encounter": [{"reference": "VARCHAR"}], "servicedDate": "VARCHAR",
                      "servicedPeriod": {"start": "VARCHAR"}, "net": {"value": "VARCHAR", "currency": "VARCHAR"}}],
            "total": {"value": "VARCHAR", "currency": "VARCHAR"}
        }') AS r
    FROM raw_claim
),
linked AS (
    SELECT *,
        rwe_fhir_ref(r.patient.reference) AS person_ref,
        rwe_fhir_cost_event_key(r.prescription.reference) AS event_ref,
        rwe_fhir_cost_visit(r.item) AS visit_ref,
        rwe_fhir_cost_date(r.item, r.billablePeriod.start, r.created) AS date_text,
        -- the header total; without one, the item nets (each the line's billed amount)
        CASE WHEN rwe_text(r.total.value) IS NOT NULL THEN [r.total]
             ELSE list_filter(list_transform(r.item, i -> i.net), n -> rwe_text(n.value) IS NOT NULL) END AS amounts,
        rwe_text(resource_id) IN (SELECT claim_id FROM adjudicated WHERE claim_id IS NOT NULL) AS adjudicated
    FROM src
),
priced AS (
    SELECT *, list_sum(list_transform(amounts, a -> rwe_num(a.value))) AS charge FROM linked
)
SELECT
    $source AS source_system,
    'Claim/' || rwe_text(resource_id) AS record_key,
    'claim' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    person_ref AS source_person_id,
    CASE WHEN event_ref IS NULL THEN visit_ref END AS visit_key,
    event_ref AS event_key,
    rwe_date(date_text) AS cost_date,
    charge AS total_charge,
    charge AS total_cost,
    coalesce(
        rwe_fhir_cost_status_failure(resource_id, r.status, r.use),
        rwe_first_failure([
            {'reason': 'ADJUDICATED', 'field': 'id', 'failed': adjudicated},
            {'reason': 'MISSING_PERSON', 'field': 'patient', 'failed': person_ref IS NULL},
            {'reason': 'MISSING_VISIT', 'field': 'item.encounter', 'failed': event_ref IS NULL AND visit_ref IS NULL},
            {'reason': 'INVALID_DATE', 'field': 'item.serviced[x], billablePeriod.start, created',
             'failed': rwe_ts(date_text) IS NULL},
            {'reason': 'NO_AMOUNT', 'field': 'total', 'failed': len(amounts) = 0},
            {'reason': 'INVALID_NUMBER', 'field': 'total', 'failed': list_bool_or(list_transform(amounts, a -> rwe_bad_num(a.value)))},
            {'reason': 'NEGATIVE_AMOUNT', 'field': 'total', 'failed': charge < 0},
            {'reason': 'UNSUPPORTED_CURRENCY', 'field': 'total',
             'failed': list_bool_or(list_transform(amounts, a -> upper(coalesce(rwe_text(a.currency), 'USD')) <> 'USD'))}
        ])
    ) AS _failure
FROM priced
