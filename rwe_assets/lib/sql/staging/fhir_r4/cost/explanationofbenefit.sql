-- FHIR R4 ExplanationOfBenefit -> staging.cost, one row per EOB: the payer's adjudication of a claim,
-- which supersedes that Claim (cost/claim.sql retires it as ADJUDICATED; one cost row per encounter).
-- Amounts by adjudication category, the EOB's header first (total[], payment), else summed over
-- item[].adjudication[]; categories are HL7 adjudication codes, CARIN Blue Button ones, or the CMS
-- Blue Button variables Synthea writes (compared by their last path segment, rwe_fhir_adjudication_code):
--   total_charge = total_cost   submitted | line_sbmtd_chrg_amt
--   paid_by_payer               payment.amount, else benefit | paidtoprovider | paidtopatient | line_prvdr_pmt_amt
--   paid_patient_copay          copay
--   paid_patient_deductible     deductible | line_bene_ptb_ddctbl_amt
--   paid_patient_coinsurance    coinsurance | line_coinsrnc_amt
--   paid_by_patient             paidbypatient, else the sum of the three shares above that are stated
--   amount_allowed              eligible | line_alowd_chrg_amt
-- An amount the EOB does not state stays NULL (total_paid is never stated as such: NULL).
-- Linked to the drug event of its `prescription`, else the encounter of its items; an EOB that names
-- neither takes the links of the Claim it adjudicates (its current version; Synthea's EOB of a
-- medication claim names no prescription). cost_date: the items' service date, else
-- billablePeriod.start, else created (rwe_fhir_cost_date). record_key: 'ExplanationOfBenefit/<id>'.
-- The payer plan period is found in the CDM by person and date (cdm/cost.sql), so Coverage staged as
-- enrollment is what links it.
-- Rules: status checks (rwe_fhir_cost_status_failure), MISSING_PERSON, MISSING_VISIT, INVALID_DATE,
--   NO_AMOUNT (neither a charge nor a payment), INVALID_NUMBER, NEGATIVE_AMOUNT, UNSUPPORTED_CURRENCY.
WITH claim_versions AS (
    SELECT rwe_text(resource_id) AS id, rwe_fhir_version_at(r.meta) AS version_at, r.item, r.prescription,
           _batch_id, _ingested_at, _source_file, _line_number
    FROM (SELECT *, from_json(resource_json, '{"meta": {"lastUpdated": "VARCHAR"},
                                               "prescription": {"reference": "VARCHAR"},
                                               "item": [{"encounter": [{"reference": "VARCHAR"}]}]}') AS r
          FROM raw_claim)
),
claims AS (  -- the current version of each Claim (as the lifecycle's): the links an EOB naming none takes
    SELECT id, rwe_fhir_cost_visit(item) AS visit_ref, rwe_fhir_cost_event_key(prescription.reference) AS event_key
    FROM rwe_fhir_current_versions('claim_versions')
),
src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR", "use": "VARCHAR",
            "patient": {"reference": "VARCHAR"}, "claim": {"reference": "VARCHAR"},
            "billablePeriod": {"start": "VARCHAR"}, "created": "VARCHAR",
            "prescription": {"reference": "VARCHAR"},
            "item": [{"encounter": [{"reference": "VARCHAR"}], "servicedDate": "VARCHAR",
                      "servicedPeriod": {"start": "VARCHAR"},
                      "adjudication": [{"category": {"coding": [{"system": "VARCHAR", "code": "VARCHAR"}]},
                                        "amount": {"value": "VARCHAR", "currency": "VARCHAR"}}]}],
            "total": [{"category": {"coding": [{"system": "VARCHAR", "code": "VARCHAR"}]},
                       "amount": {"value": "VARCHAR", "currency": "VARCHAR"}}],
            "payment": {"amount": {"value": "VARCHAR", "currency": "VARCHAR"}}
        }') AS r
    FROM raw_explanationofbenefit
),
linked AS (
    SELECT src.*,
        rwe_fhir_ref(r.patient.reference) AS person_ref,
        coalesce(rwe_fhir_cost_event_key(r.prescription.reference), claim.event_key) AS event_ref,
        coalesce(rwe_fhir_cost_visit(r.item), claim.visit_ref) AS visit_ref,
        rwe_fhir_cost_date(r.item, r.billablePeriod.start, r.created) AS date_text,
        rwe_fhir_money_entries(r.total) AS header,
        rwe_fhir_money_entries(flatten(list_transform(r.item, i -> coalesce(i.adjudication, [])))) AS lines
    FROM src LEFT JOIN claims claim ON claim.id = rwe_fhir_adjudicated_claim(r)
),
priced AS (
    SELECT *,
        coalesce(rwe_fhir_adjudicated(header, ['submitted', 'line_sbmtd_chrg_amt']),
                 rwe_fhir_adjudicated(lines, ['submitted', 'line_sbmtd_chrg_amt'])) AS charge,
        coalesce(rwe_num(r.payment.amount.value),
                 rwe_fhir_adjudicated(header, ['benefit', 'paidtoprovider', 'paidtopatient', 'line_prvdr_pmt_amt']),
                 rwe_fhir_adjudicated(lines, ['benefit', 'paidtoprovider', 'paidtopatient', 'line_prvdr_pmt_amt'])) AS payer,
        coalesce(rwe_fhir_adjudicated(header, ['copay']), rwe_fhir_adjudicated(lines, ['copay'])) AS copay,
        coalesce(rwe_fhir_adjudicated(header, ['deductible', 'line_bene_ptb_ddctbl_amt']),
                 rwe_fhir_adjudicated(lines, ['deductible', 'line_bene_ptb_ddctbl_amt'])) AS deductible,
        coalesce(rwe_fhir_adjudicated(header, ['coinsurance', 'line_coinsrnc_amt']),
                 rwe_fhir_adjudicated(lines, ['coinsurance', 'line_coinsrnc_amt'])) AS coinsurance,
        coalesce(rwe_fhir_adjudicated(header, ['paidbypatient']), rwe_fhir_adjudicated(lines, ['paidbypatient'])) AS by_patient,
        coalesce(rwe_fhir_adjudicated(header, ['eligible', 'line_alowd_chrg_amt']),
                 rwe_fhir_adjudicated(lines, ['eligible', 'line_alowd_chrg_amt'])) AS allowed,
        list_concat(header, lines, [{'codes': ['payment'], 'value': r.payment.amount.value,
                                     'currency': r.payment.amount.currency}]) AS entries
    FROM linked
)
SELECT
    $source AS source_system,
    'ExplanationOfBenefit/' || rwe_text(resource_id) AS record_key,
    'explanationofbenefit' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    person_ref AS source_person_id,
    CASE WHEN event_ref IS NULL THEN visit_ref END AS visit_key,
    event_ref AS event_key,
    rwe_date(date_text) AS cost_date,
    charge AS total_charge,
    charge AS total_cost,
    payer AS paid_by_payer,
    coalesce(by_patient, list_sum([copay, deductible, coinsurance])) AS paid_by_patient,
    copay AS paid_patient_copay,
    deductible AS paid_patient_deductible,
    coinsurance AS paid_patient_coinsurance,
    allowed AS amount_allowed,
    coalesce(
        rwe_fhir_cost_status_failure(resource_id, r.status, r.use),
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': 'patient', 'failed': person_ref IS NULL},
            {'reason': 'MISSING_VISIT', 'field': 'item.encounter', 'failed': event_ref IS NULL AND visit_ref IS NULL},
            {'reason': 'INVALID_DATE', 'field': 'item.serviced[x], billablePeriod.start, created',
             'failed': rwe_ts(date_text) IS NULL},
            {'reason': 'NO_AMOUNT', 'field': 'total', 'failed': charge IS NULL AND payer IS NULL},
            {'reason': 'INVALID_NUMBER', 'field': 'adjudication.amount',
             'failed': list_bool_or(list_transform(entries, e -> rwe_bad_num(e.value)))},
            {'reason': 'NEGATIVE_AMOUNT', 'field': 'adjudication.amount',
             'failed': list_bool_or(list_transform([charge, payer, copay, deductible, coinsurance, by_patient, allowed],
                                                   x -> x < 0))},
            {'reason': 'UNSUPPORTED_CURRENCY', 'field': 'adjudication.amount',
             'failed': list_bool_or(list_transform(entries,
                                                   e -> upper(coalesce(rwe_text(e.currency), 'USD')) <> 'USD'))}
        ])
    ) AS _failure
FROM priced
