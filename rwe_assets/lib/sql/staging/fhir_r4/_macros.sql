-- Macros of the fhir_r4 profile, created before its SQL files run (lib/staging/build.py).
--
-- rwe_fhir_vocabulary(system): FHIR coding system URL -> OMOP vocabulary_id. The system is compared
--   trimmed, lower-cased and without a trailing '/'. Official FHIR URLs (terminologies-systems) and the
--   HL7 v3 OIDs that C-CDA-converted resources still carry are both accepted. An unknown system gives
--   NULL; the staging SQL then keeps the system URL itself as vocabulary_id, so the code is reported
--   as unmapped by the CDM build, never silently dropped (rwe_fhir_pick_coding).
-- The n-th system maps to the n-th vocabulary: one list_position per coding (a CASE over the 27
-- systems inside the codings' lambda costs several times more); the first match wins, as in a CASE.
CREATE OR REPLACE MACRO rwe_fhir_vocabulary(system) AS
    ['SNOMED', 'SNOMED', 'RxNorm', 'RxNorm', 'LOINC', 'LOINC', 'CVX', 'CVX', 'ICD10CM', 'ICD10CM', 'ICD10', 'ICD10', 'ICD9CM', 'ICD9CM', 'ICD9Proc', 'ICD10PCS', 'ICD10PCS', 'CPT4', 'CPT4', 'HCPCS', 'HCPCS', 'HCPCS', 'NDC', 'NDC', 'ATC', 'NUCC', 'UCUM']
    [list_position([
        'http://snomed.info/sct',                                    -- 1: SNOMED
        'urn:oid:2.16.840.1.113883.6.96',                            -- 2: SNOMED
        'http://www.nlm.nih.gov/research/umls/rxnorm',               -- 3: RxNorm
        'urn:oid:2.16.840.1.113883.6.88',                            -- 4: RxNorm
        'http://loinc.org',                                          -- 5: LOINC
        'urn:oid:2.16.840.1.113883.6.1',                             -- 6: LOINC
        'http://hl7.org/fhir/sid/cvx',                               -- 7: CVX
        'urn:oid:2.16.840.1.113883.12.292',                          -- 8: CVX
        'http://hl7.org/fhir/sid/icd-10-cm',                         -- 9: ICD10CM
        'urn:oid:2.16.840.1.113883.6.90',                            -- 10: ICD10CM
        'http://hl7.org/fhir/sid/icd-10',                            -- 11: ICD10
        'urn:oid:2.16.840.1.113883.6.3',                             -- 12: ICD10
        'http://hl7.org/fhir/sid/icd-9-cm',                          -- 13: ICD9CM
        'urn:oid:2.16.840.1.113883.6.103',                           -- 14: ICD9CM
        'urn:oid:2.16.840.1.113883.6.104',                           -- 15: ICD9Proc
        'http://www.cms.gov/medicare/coding/icd10',                  -- 16: ICD10PCS
        'urn:oid:2.16.840.1.113883.6.4',                             -- 17: ICD10PCS
        'http://www.ama-assn.org/go/cpt',                            -- 18: CPT4
        'urn:oid:2.16.840.1.113883.6.12',                            -- 19: CPT4
        'https://www.cms.gov/medicare/coding/hcpcsreleasecodesets',  -- 20: HCPCS
        'http://www.cms.gov/medicare/coding/hcpcsreleasecodesets',   -- 21: HCPCS
        'urn:oid:2.16.840.1.113883.6.285',                           -- 22: HCPCS
        'http://hl7.org/fhir/sid/ndc',                               -- 23: NDC
        'urn:oid:2.16.840.1.113883.6.69',                            -- 24: NDC
        'http://www.whocc.no/atc',                                   -- 25: ATC
        'http://nucc.org/provider-taxonomy',                         -- 26: NUCC
        'http://unitsofmeasure.org'                                  -- 27: UCUM
    ], lower(rtrim(trim(system), '/')))];

-- rwe_fhir_ref(ref): a FHIR Reference.reference -> the id of the resource it points at.
--   Patient/123 -> 123; https://server/fhir/Patient/123/_history/2 -> 123; urn:uuid:6f1c... -> 6f1c...;
--   Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493 -> 9999974493 (a conditional
--   reference resolves to the identifier VALUE); '' or no match -> NULL.
--   The target's type is not checked: a subject that is Group/123 becomes '123' and is then
--   quarantined as ORPHAN_PERSON by the framework (no Patient 123 staged), never silently attached.
CREATE OR REPLACE MACRO rwe_fhir_ref(ref) AS rwe_text(regexp_extract(ref, '([^/:=|]+)(/_history/[^/]*)?$', 1));

-- rwe_fhir_version_at(meta): the resource's meta.lastUpdated, as text, for the candidates' _version_at:
--   it orders two versions of one resource, the later one current (lib/staging/lifecycle.py; staging
--   reads it as an instant, lib/staging/profile_inputs.py). `meta` is read in the file's one from_json: a second parse of resource_json
--   (json_extract_string) tripled the parse's cost, and casting every row's instant cost a quarter more.
CREATE OR REPLACE MACRO rwe_fhir_version_at(meta) AS rwe_text(meta.lastUpdated);

-- rwe_fhir_codings(codings): a list of FHIR Codings -> the codings that have a code, in their order,
--   each normalized to {code, display, system, vocabulary_id}: code, display and system trimmed ('' is
--   NULL), vocabulary_id the system's OMOP vocabulary_id (rwe_fhir_vocabulary), NULL for an unknown
--   system. An element holding several CodeableConcepts (CarePlan.category, Encounter.type) passes
--   all their codings: flatten(list_transform(concepts, k -> k.coding)).
CREATE OR REPLACE MACRO rwe_fhir_codings(codings) AS
    list_filter(list_transform(codings, c -> {
        'code': rwe_text(c.code), 'display': rwe_text(c.display), 'system': rwe_text(c.system),
        'vocabulary_id': rwe_fhir_vocabulary(c.system)
    }), c -> c.code IS NOT NULL);

-- rwe_fhir_pick_coding(codings): the one coding staged, from a list made by rwe_fhir_codings: the
--   first whose system maps to an OMOP vocabulary, else the first. Its vocabulary_id is the OMOP one,
--   or for an unknown system the system URL itself. An empty list gives a coding whose fields are all
--   NULL (the row is then MISSING_CODE). The one-element list binds the chosen coding to `c`, so the
--   choice is made once, not once per field.
CREATE OR REPLACE MACRO rwe_fhir_pick_coding(codings) AS
    list_transform([coalesce(list_filter(codings, c -> c.vocabulary_id IS NOT NULL)[1], codings[1])],
        c -> struct_update(c, vocabulary_id := coalesce(c.vocabulary_id, c.system)))[1];

-- rwe_fhir_home_address(addresses): a Patient's address to stage (person_source and person_pii take
--   the same one): the address with use 'home', else the first not marked 'old', else the first.
CREATE OR REPLACE MACRO rwe_fhir_home_address(addresses) AS
    coalesce(list_filter(addresses, a -> a.use = 'home')[1],
             list_filter(addresses, a -> coalesce(a.use, '') <> 'old')[1],
             addresses[1]);

-- Quarantine checks shared by the resource files. Each macro returns the first check of its group
-- that fails, as {reason, field, failed} (rwe_first_failure), or NULL; a file chains the groups and its
-- own checks, in the order they are tested, with coalesce(...), which gives the first failure overall
-- (as rwe_first_failure over one list would, without building and concatenating lists per row).
-- Values are passed already normalized (ids by rwe_fhir_ref, the code from rwe_fhir_pick_coding);
-- dates as text, parsed by rwe_ts.
--
-- rwe_fhir_status_failure(id, status_field, status_codes[, withdrawn]): the resource's own state,
--   checked first: MISSING_ID (blank resource id, field 'id'); ENTERED_IN_ERROR when status_codes (the
--   codes of status_field: [status], or the codings of verificationStatus) hold 'entered-in-error';
--   then, in order, each {'code', 'reason'} of withdrawn whose code they hold: the statuses of that
--   resource type saying it is not a fact (not-done -> NOT_DONE, cancelled -> CANCELLED, draft ->
--   PLANNED, refuted -> REFUTED, ...; the table in README.md). These reasons are status reasons
--   (lib/staging/lifecycle.py STATUS_REASONS): the row retires its record instead of being quarantined.
CREATE OR REPLACE MACRO rwe_fhir_status_failure(id, status_field, status_codes, withdrawn := NULL) AS
    rwe_first_failure(list_concat(
        [{'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(id) IS NULL},
         {'reason': 'ENTERED_IN_ERROR', 'field': status_field,
          'failed': list_contains(status_codes, 'entered-in-error')}],
        list_transform(withdrawn, w -> {'reason': w.reason, 'field': status_field,
                                        'failed': list_contains(status_codes, w.code)})));

-- rwe_fhir_event_failure(person_field, person_ref, code_field, code, start_field, start_text
--                        [, end_field, end_text]): the checks of every event after the status ones:
--   MISSING_PERSON (no patient reference), MISSING_CODE (no coding with a code), then the period
--   checks of rwe_period_failure (staging/_macros.sql).
CREATE OR REPLACE MACRO rwe_fhir_event_failure(person_field, person_ref, code_field, code,
        start_field, start_text, end_field := NULL, end_text := NULL) AS
    coalesce(
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': person_field, 'failed': person_ref IS NULL},
            {'reason': 'MISSING_CODE', 'field': code_field, 'failed': code IS NULL}
        ]),
        rwe_period_failure(start_field, start_text, end_field, end_text));

-- rwe_fhir_medication_codings(concept, reference, contained): the codings naming a request's or an
--   administration's drug. medicationCodeableConcept when given; else medicationReference resolved to a
--   Medication contained in the resource ('#id') or sent as a Medication resource of the source
--   (rwe_fhir_medications, joined by the caller as `med` on med.id = rwe_fhir_ref(reference)).
CREATE OR REPLACE MACRO rwe_fhir_medication_codings(concept, reference, contained, medication) AS coalesce(
    nullif(concept.coding, []),
    list_filter(contained, c -> c.resourceType = 'Medication' AND '#' || c.id = trim(reference))[1].code.coding,
    medication.coding);

-- rwe_fhir_medication_id(concept, reference): the id of the Medication resource whose code names a
--   request's or an administration's drug (the `med` join above): NULL when the concept has codings or
--   the reference is to a contained Medication ('#id'). rwe_fhir_medication_id_json(resource_json)
--   reads it from the raw text (the incremental check's link to a Medication of another batch).
CREATE OR REPLACE MACRO rwe_fhir_medication_id(concept, reference) AS CASE
    WHEN nullif(concept.coding, []) IS NULL AND NOT starts_with(trim(reference), '#') THEN rwe_fhir_ref(reference) END;
CREATE OR REPLACE MACRO rwe_fhir_medication_id_json(resource_json) AS rwe_fhir_medication_id(
    from_json(resource_json, '{"medicationCodeableConcept": {"coding": [{"code": "VARCHAR"}]}}').medicationCodeableConcept,
    from_json(resource_json, '{"medicationReference": {"reference": "VARCHAR"}}').medicationReference.reference);

-- rwe_fhir_current_versions(versions): the current version of each id among the rows of relation
--   `versions` (a CTE's name; columns id, version_at: meta.lastUpdated as text, _batch_id, _ingested_at,
--   _source_file, _line_number), by the lifecycle's rule (lib/staging/lifecycle.py, NEWEST_FIRST): a
--   version an earlier batch states a later instant for is stale and never current; among the others
--   the later batch, then the later instant. Batches are in the lifecycle's own order, batch_info's
--   batch_order (the source's batches by their first current file of any entity, made before the
--   profile SQL runs: lib/staging/build.py _stage_source), so an old batch's file delivered again
--   later does not make that batch newer here than there.
--   For what one resource reads of another before staging resolves versions (an EOB's Claim, a note's
--   replacement).
CREATE OR REPLACE MACRO rwe_fhir_current_versions(versions) AS TABLE
    WITH dated AS (
        SELECT v.*, TRY_CAST(v.version_at AS TIMESTAMPTZ) AS _instant, b.batch_order AS _batch_at
        FROM query_table(versions) v JOIN batch_info b USING (_batch_id)
    ),
    staled AS (
        SELECT *, coalesce(_instant < max(_instant) OVER (PARTITION BY id ORDER BY _batch_at
                           RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS _stale
        FROM dated
    )
    SELECT * EXCLUDE (_instant, _batch_at, _stale) FROM staled
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY _stale, _batch_at DESC,
                               _instant DESC NULLS LAST, _ingested_at DESC, _source_file, _line_number) = 1;

-- rwe_fhir_medications(): the Medication resources of the source's current files, the current version
--   of each id by the lifecycle's rule (rwe_fhir_current_versions: a stale version re-sent or split
--   into a later line of one export does not name the drug).
CREATE OR REPLACE MACRO rwe_fhir_medications() AS TABLE
    WITH medication_versions AS (
        SELECT rwe_text(resource_id) AS id, rwe_fhir_version_at(r.meta) AS version_at, r.code,
               _batch_id, _ingested_at, _source_file, _line_number
        FROM (SELECT *, from_json(resource_json, '{"meta": {"lastUpdated": "VARCHAR"},
                      "code": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}],
                               "text": "VARCHAR"}}') AS r
              FROM raw_medication)
    )
    SELECT id, code FROM rwe_fhir_current_versions('medication_versions');

-- rwe_fhir_device_uses(): when each Device was put to use, as the source states it: R4 Device has no
--   date of use (manufactureDate is when it was made; Synthea writes the day it was given less 21 days),
--   a Procedure whose focalDevice[].manipulated references the Device does (performed[x]). Per device
--   id: start_text, the earliest performed start of the current versions (rwe_fhir_current_versions) of
--   the Procedures that manipulate it other than by removal, and end_text, the earliest of those that
--   remove it (focalDevice.action SNOMED 129303008 Removal, 129304002 Excision: FHIR R4 device-action).
--   A Procedure withdrawn by its status (entered-in-error, not-done, preparation) states no use.
CREATE OR REPLACE MACRO rwe_fhir_device_uses() AS TABLE
    WITH procedure_versions AS (
        SELECT rwe_text(resource_id) AS id, rwe_fhir_version_at(r.meta) AS version_at, r.status,
               coalesce(rwe_text(r.performedDateTime), rwe_text(r.performedPeriod.start)) AS performed,
               r.focalDevice, _batch_id, _ingested_at, _source_file, _line_number
        FROM (SELECT *, from_json(resource_json, '{"meta": {"lastUpdated": "VARCHAR"}, "status": "VARCHAR",
                      "performedDateTime": "VARCHAR", "performedPeriod": {"start": "VARCHAR"},
                      "focalDevice": [{"action": {"coding": [{"system": "VARCHAR", "code": "VARCHAR"}]},
                                       "manipulated": {"reference": "VARCHAR"}}]}') AS r
              -- a substring test first: only the few Procedures naming a device are parsed (none of Synthea's)
              FROM raw_procedure WHERE resource_json LIKE '%focalDevice%')
    ),
    uses AS (
        SELECT performed, rwe_fhir_ref(d.manipulated.reference) AS device_id,
               coalesce(list_has_any(list_transform(d.action.coding, c -> c.code), ['129303008', '129304002']),
                        false) AS removal
        FROM (SELECT performed, unnest(focalDevice) AS d FROM rwe_fhir_current_versions('procedure_versions')
              WHERE coalesce(status, '') NOT IN ('entered-in-error', 'not-done', 'preparation')
                AND rwe_ts(performed) IS NOT NULL)
    )
    SELECT device_id, arg_min(performed, rwe_ts(performed)) FILTER (WHERE NOT removal) AS start_text,
           arg_min(performed, rwe_ts(performed)) FILTER (WHERE removal) AS end_text
    FROM uses WHERE device_id IS NOT NULL GROUP BY device_id;

-- rwe_fhir_manipulated_devices(resource_json): the ids of the Devices a Procedure's focalDevice entries
--   manipulate (the incremental check's link from a Procedure to the Device it dates).
CREATE OR REPLACE MACRO rwe_fhir_manipulated_devices(resource_json) AS
    list_transform(from_json(resource_json, '{"focalDevice": [{"manipulated": {"reference": "VARCHAR"}}]}').focalDevice,
                   d -> rwe_fhir_ref(d.manipulated.reference));

-- Money of Claim and ExplanationOfBenefit (cost/claim.sql, cost/explanationofbenefit.sql).
--
-- rwe_fhir_adjudication_code(code): an adjudication category code reduced to its last path segment,
--   so the HL7 codes (http://terminology.hl7.org/CodeSystem/adjudication: 'submitted', 'benefit', ...)
--   and the CMS Blue Button codes Synthea writes, which are URLs
--   ('https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt'), compare the same way.
CREATE OR REPLACE MACRO rwe_fhir_adjudication_code(code) AS lower(regexp_extract(rwe_text(code), '[^/]+$'));

-- rwe_fhir_adjudicated(entries, codes): the sum of the amounts of `entries` (a list of {codes, value,
--   currency}: one per EOB.total[] or item[].adjudication[], codes normalized by
--   rwe_fhir_adjudication_code) whose category holds one of `codes`; NULL when none does (an amount the
--   source does not state stays NULL, never 0).
CREATE OR REPLACE MACRO rwe_fhir_adjudicated(entries, codes) AS
    list_sum(list_transform(list_filter(entries, e -> list_has_any(e.codes, codes)), e -> rwe_num(e.value)));

-- rwe_fhir_money_entries(adjudications): EOB.total[] or the item[].adjudication[] of all items (each
--   {category: CodeableConcept, amount: Money}) -> the list rwe_fhir_adjudicated reads.
CREATE OR REPLACE MACRO rwe_fhir_money_entries(adjudications) AS
    list_transform(adjudications, a -> {
        'codes': list_transform(a.category.coding, c -> rwe_fhir_adjudication_code(c.code)),
        'value': a.amount.value, 'currency': a.amount.currency});

-- rwe_fhir_cost_event_key(prescription): a Claim's or EOB's `prescription` reference -> the record key
--   of the drug event it pays for ('MedicationRequest/<id>', as event/medicationrequest.sql keys it).
--   A reference typed as another kind of request (VisionPrescription, DeviceRequest) is no drug: NULL,
--   and the cost is linked to its encounter. An untyped urn:uuid reference is taken as a
--   MedicationRequest (the only kind Synthea writes there).
CREATE OR REPLACE MACRO rwe_fhir_cost_event_key(prescription) AS CASE
    WHEN regexp_matches(coalesce(prescription, ''), '(^|/)(VisionPrescription|DeviceRequest)/') THEN NULL
    ELSE 'MedicationRequest/' || rwe_fhir_ref(prescription) END;

-- rwe_fhir_cost_visit(items): the encounter a Claim or EOB bills: the first item[].encounter[]
--   reference given (Synthea puts the encounter on every item), normalized by rwe_fhir_ref.
CREATE OR REPLACE MACRO rwe_fhir_cost_visit(items) AS
    rwe_fhir_ref(list_filter(flatten(list_transform(items, i -> coalesce(i.encounter, []))),
                             e -> rwe_text(e.reference) IS NOT NULL)[1].reference);

-- rwe_fhir_cost_date(items, billable_start, created): the date of service a Claim or EOB bills, as text:
--   the first item's servicedDate or servicedPeriod.start, else billablePeriod.start, else created.
--   The items come first because Synthea's EOB starts its billablePeriod when the encounter ends and
--   runs it a year on (the time to bill); the service date is what finds the payer plan period.
CREATE OR REPLACE MACRO rwe_fhir_cost_date(items, billable_start, created) AS coalesce(
    list_filter(list_transform(items, i -> coalesce(rwe_text(i.servicedDate), rwe_text(i.servicedPeriod.start))),
                d -> d IS NOT NULL)[1],
    rwe_text(billable_start), rwe_text(created));

-- rwe_fhir_cost_status_failure(id, status, use): the status checks of a Claim or an EOB: MISSING_ID,
--   entered-in-error -> ENTERED_IN_ERROR, cancelled -> CANCELLED, draft -> PLANNED (not submitted or
--   not final); a `use` of preauthorization or predetermination asks what would be paid for care not
--   yet given -> PLANNED. All status reasons: the row retires its record.
CREATE OR REPLACE MACRO rwe_fhir_cost_status_failure(id, status, use) AS coalesce(
    rwe_fhir_status_failure(id, 'status', [status],
                            [{'code': 'cancelled', 'reason': 'CANCELLED'}, {'code': 'draft', 'reason': 'PLANNED'}]),
    rwe_first_failure([{'reason': 'PLANNED', 'field': 'use',
                        'failed': use IN ('preauthorization', 'predetermination')}]));

-- Links from one resource to another that this profile resolves within the raw rows it reads; incremental
-- staging reads the same macros to find a link between a new batch and an earlier one, which makes the
-- run a full build (lib/staging/incremental_scope.py, refuse_cross_batch_links).
--
-- rwe_fhir_adjudicated_claim(eob): the id of the Claim an ExplanationOfBenefit adjudicates (its `claim`
--   Reference), from the resource as the file's one from_json read it (holding at least
--   {"claim": {"reference": "VARCHAR"}}: a second parse of resource_json costs as much as the first);
--   rwe_fhir_adjudicated_claim_json(resource_json) reads it from the raw text.
CREATE OR REPLACE MACRO rwe_fhir_adjudicated_claim(eob) AS rwe_fhir_ref(eob.claim.reference);
CREATE OR REPLACE MACRO rwe_fhir_adjudicated_claim_json(resource_json) AS
    rwe_fhir_adjudicated_claim(from_json(resource_json, '{"claim": {"reference": "VARCHAR"}}'));

-- rwe_fhir_replaced_notes(resource_json): the ids of the notes a DocumentReference replaces, the targets
--   of its relatesTo entries with code 'replaces' ('appends', 'transforms', 'signs' keep both notes).
CREATE OR REPLACE MACRO rwe_fhir_replaced_notes(resource_json) AS
    list_transform(
        list_filter(from_json(resource_json, '{"relatesTo": [{"code": "VARCHAR", "target": {"reference": "VARCHAR"}}]}').relatesTo,
                    x -> x.code = 'replaces'),
        x -> rwe_fhir_ref(x.target.reference));
