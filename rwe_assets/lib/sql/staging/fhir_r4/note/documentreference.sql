-- FHIR R4 DocumentReference -> staging.note. Synthea writes one per encounter: a clinical note as a
-- base64 text/plain attachment.
-- note_datetime: date, else context.period.start. code: type.coding (LOINC document type, chosen as in
--   _macros.sql); title: that coding's display. note_text: the first content[].attachment whose
--   contentType is text/plain (any charset label; the data must decode as UTF-8), else the first
--   attachment. The patient's identifiers are redacted from the text afterwards, by the framework
--   (redact_note_identifiers in lib/staging/build.py, which calls lib/staging/deid.py), before anything is written.
-- source_person_id (subject), visit_key (context.encounter[0]), provider_key (author[0]).
-- record_key: the resource id.
-- Rules: id required; status 'entered-in-error' -> ENTERED_IN_ERROR ('superseded', which Synthea
--   writes on every note, is staged: the note is still what was written at that visit); subject
--   required; a parseable date; an attachment with inline data (a note held only by URL is
--   MISSING_TEXT: its text is not in the export); contentType text/* (else UNSUPPORTED_CONTENT_TYPE);
--   data that is not base64 of UTF-8 text -> INVALID_TEXT.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR",
            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "date": "VARCHAR",
            "author": [{"reference": "VARCHAR"}],
            "context": {"encounter": [{"reference": "VARCHAR"}], "period": {"start": "VARCHAR"}},
            "content": [{"attachment": {"contentType": "VARCHAR", "data": "VARCHAR"}}]
        }') AS r
    FROM raw_documentreference
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(rwe_fhir_codings(r.type.coding)) AS coding,
        rwe_fhir_ref(r.subject.reference) AS person_ref,
        rwe_fhir_ref(r.context.encounter[1].reference) AS visit_ref,
        rwe_fhir_ref(r.author[1].reference) AS provider_ref,
        coalesce(rwe_text(r.date), rwe_text(r.context.period.start)) AS date_text,
        coalesce(list_filter(r.content, c -> lower(c.attachment.contentType) LIKE 'text/plain%')[1],
                 r.content[1]).attachment AS attachment
    FROM src
),
decoded AS (
    SELECT *, try(decode(from_base64(attachment.data))) AS text FROM picked
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'documentreference' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(date_text) AS note_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    coalesce(coding.display, rwe_text(r.type.text)) AS title,
    text AS note_text,
    provider_ref AS provider_key,
    coalesce(
        rwe_fhir_status_failure(resource_id, 'status', [r.status]),
        rwe_first_failure([
            {'reason': 'MISSING_PERSON', 'field': 'subject', 'failed': person_ref IS NULL},
            {'reason': 'MISSING_TEXT', 'field': 'content.attachment.data',
             'failed': rwe_text(attachment.data) IS NULL},
            {'reason': 'UNSUPPORTED_CONTENT_TYPE', 'field': 'content.attachment.contentType',
             'failed': NOT coalesce(lower(attachment.contentType) LIKE 'text/%', true)},
            {'reason': 'INVALID_TEXT', 'field': 'content.attachment.data', 'failed': text IS NULL}
        ]),
        rwe_period_failure('date', date_text)
    ) AS _failure
FROM decoded
