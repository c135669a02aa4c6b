-- FHIR R4 DocumentReference -> staging.note. Synthea writes one per encounter: a clinical note as a
-- base64 text/plain attachment; EHR servers also send the same note as text/html, a PDF beside it, or
-- the text only behind a url.
-- note_datetime: date, else context.period.start. code: type.coding (LOINC document type, chosen as in
--   _macros.sql); title: that coding's display, else type.text.
-- note_text: of the attachments with inline data, the first text/plain (no contentType counts as
--   text/plain), else the first text/html, else the first one (so its type is reported); without any,
--   the first attachment (MISSING_TEXT). The bytes are read in the attachment's charset: none, utf-8 or
--   us-ascii as UTF-8 (a byte order mark dropped); iso-8859-1, latin1 or windows-1252 as windows-1252
--   (the WHATWG Encoding Standard reads all three labels so); another charset is UNSUPPORTED_CHARSET.
--   HTML becomes plain text: head, title, script and style dropped, line-ending tags (br, p, div, li, tr, h1-h6) a line
--   break, other tags removed, character references decoded, so that the de-identification sees the
--   words a reader sees ('Dr.&nbsp;Smith' or 'J&#111;hn' would hide a name from it); a no-break space
--   (U+00A0) becomes a space in any note.
--   The patient's identifiers are redacted from the text afterwards, by the framework
--   (redact_note_identifiers in lib/staging/build.py, which calls lib/staging/deid.py), before anything is written.
-- source_person_id (subject), visit_key (context.encounter[0]), provider_key: the first author that is
--   a Practitioner (an Organization, Patient or Device author is no provider).
-- record_key: the resource id.
-- Rules: id required; status or docStatus 'entered-in-error' -> ENTERED_IN_ERROR ('superseded', which
--   Synthea writes on every note, is staged: the note is still what was written at that visit;
--   docStatus preliminary and amended are staged: text that was written; a later version replaces it
--   under its id); a note that another note of the staged files replaces (its latest version's
--   relatesTo code 'replaces', unless that version is entered-in-error) -> REPLACED, a status reason
--   that retires it, so the corrected note is the only one ('appends', 'transforms', 'signs' keep
--   both: an addendum is a note of its own); subject required; a parseable date; an attachment with inline data (a note held
--   only by URL is MISSING_TEXT: its text is not in the export); text/plain or text/html (else
--   UNSUPPORTED_CONTENT_TYPE: a PDF, RTF or image is no text the CDM can hold); a charset read as
--   above (else UNSUPPORTED_CHARSET); data that is not base64 of text in that charset -> INVALID_TEXT;
--   a text of nothing but white space -> EMPTY_TEXT.
WITH replaced AS (  -- the notes that the latest version of another note replaces (relatesTo)
    SELECT DISTINCT unnest(list_transform(list_filter(r.relatesTo, x -> x.code = 'replaces'),
                                          x -> rwe_fhir_ref(x.target.reference))) AS note_id
    FROM (SELECT from_json(resource_json, '{"status": "VARCHAR", "docStatus": "VARCHAR",
                 "relatesTo": [{"code": "VARCHAR", "target": {"reference": "VARCHAR"}}]}') AS r
          FROM raw_documentreference
          QUALIFY row_number() OVER (PARTITION BY rwe_text(resource_id)
                                     ORDER BY _ingested_at DESC, _line_number DESC) = 1)
    WHERE 'entered-in-error' NOT IN (coalesce(r.status, ''), coalesce(r.docStatus, ''))
),
src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "status": "VARCHAR", "docStatus": "VARCHAR",
            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "date": "VARCHAR",
            "author": [{"reference": "VARCHAR", "type": "VARCHAR"}],
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
        rwe_fhir_ref(list_filter(r.author, a -> a.type = 'Practitioner'
            OR regexp_matches(coalesce(a.reference, ''), '(^|/)Practitioner[/?]'))[1].reference) AS provider_ref,
        coalesce(rwe_text(r.date), rwe_text(r.context.period.start)) AS date_text,
        list_filter(r.content, c -> rwe_text(c.attachment.data) IS NOT NULL) AS inline
    FROM src
),
chosen AS (
    SELECT *,
        coalesce(list_filter(inline, c -> regexp_matches(coalesce(lower(c.attachment.contentType), ''),
                                                         '^\s*(text/plain)?\s*(;.*)?$'))[1],
                 list_filter(inline, c -> lower(c.attachment.contentType) LIKE 'text/html%')[1],
                 inline[1], r.content[1]).attachment AS attachment
    FROM picked
),
typed AS (
    SELECT *,
        coalesce(nullif(trim(split_part(lower(attachment.contentType), ';', 1)), ''), 'text/plain') AS mime,
        coalesce(trim(split_part(split_part(replace(lower(attachment.contentType), ' ', ''), 'charset=', 2), ';', 1),
                      '"'), '') AS charset,
        try(from_base64(attachment.data)) AS bytes
    FROM chosen
),
latin AS (  -- the bytes as hex, only for the charsets read byte by byte
    SELECT *, CASE WHEN charset IN ('iso-8859-1', 'iso8859-1', 'iso_8859-1', 'latin1', 'l1', 'windows-1252', 'cp1252')
                   THEN hex(bytes) END AS hex_bytes
    FROM typed
),
decoded AS (
    SELECT *,
        CASE WHEN charset IN ('', 'utf-8', 'utf8', 'us-ascii', 'ascii')
                 THEN ltrim(try(decode(bytes)), chr(65279))
             -- windows-1252: a byte is its code point, except 0x80-0x9F (the standard's table)
             WHEN hex_bytes IS NOT NULL
                 THEN array_to_string(list_transform(
                     list_transform(range(length(hex_bytes) // 2),
                                    i -> ('0x' || substr(hex_bytes, 2 * i + 1, 2))::INTEGER),
                     b -> chr(CASE WHEN b BETWEEN 128 AND 159 THEN [8364, 129, 8218, 402, 8222, 8230, 8224,
                         8225, 710, 8240, 352, 8249, 338, 141, 381, 143, 144, 8216, 8217, 8220, 8221, 8226, 8211,
                         8212, 732, 8482, 353, 8250, 339, 157, 382, 376][b - 127] ELSE b END)), '')
        END AS read_text,
        charset NOT IN ('', 'utf-8', 'utf8', 'us-ascii', 'ascii', 'iso-8859-1', 'iso8859-1', 'iso_8859-1',
                        'latin1', 'l1', 'windows-1252', 'cp1252') AS unsupported_charset
    FROM latin
),
untagged AS (
    SELECT *, CASE WHEN mime = 'text/html' THEN regexp_replace(regexp_replace(regexp_replace(regexp_replace(
                  regexp_replace(read_text, '(?is)<head\b.*?</head\s*>', '', 'g'),
                  '(?is)<(script|style|title)\b.*?</(script|style|title)\s*>', '', 'g'),
                  '(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>', chr(10), 'g'),
                  '<[^>]*>', '', 'g'),
                  '(?i)&nbsp;', ' ', 'g') END AS html_text
    FROM decoded
),
texts AS (  -- numeric references (&#NNN; &#xHH;) by splitting at '&#', then the named ones, &amp; last;
            -- a no-break space becomes a space: the recognizers read 'Dr.' and the name apart by spaces
    SELECT *,
        replace(CASE WHEN mime = 'text/html' THEN replace(replace(replace(replace(replace(array_to_string(list_transform(
                 string_split(html_text, '&#'), (p, i) -> CASE
                     WHEN i = 1 THEN p
                     WHEN regexp_matches(p, '^[0-9]{1,7};')
                         THEN coalesce(try(chr(split_part(p, ';', 1)::INTEGER)), chr(65533))
                              || substr(p, strpos(p, ';') + 1)
                     WHEN regexp_matches(p, '^[xX][0-9a-fA-F]{1,6};')
                         THEN coalesce(try(chr(('0x' || substr(split_part(p, ';', 1), 2))::INTEGER)), chr(65533))
                              || substr(p, strpos(p, ';') + 1)
                     ELSE '&#' || p END), ''),
                 '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&apos;', ''''), '&amp;', '&')
             ELSE read_text END, chr(160), ' ') AS text
    FROM untagged
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
        rwe_fhir_status_failure(resource_id, 'docStatus', [r.docStatus]),
        rwe_first_failure([
            {'reason': 'REPLACED', 'field': 'id',
             'failed': rwe_text(resource_id) IN (SELECT note_id FROM replaced WHERE note_id IS NOT NULL)},
            {'reason': 'MISSING_PERSON', 'field': 'subject', 'failed': person_ref IS NULL},
            {'reason': 'MISSING_TEXT', 'field': 'content.attachment.data',
             'failed': rwe_text(attachment.data) IS NULL},
            {'reason': 'UNSUPPORTED_CONTENT_TYPE', 'field': 'content.attachment.contentType',
             'failed': mime NOT IN ('text/plain', 'text/html')},
            {'reason': 'UNSUPPORTED_CHARSET', 'field': 'content.attachment.contentType',
             'failed': unsupported_charset},
            {'reason': 'INVALID_TEXT', 'field': 'content.attachment.data', 'failed': text IS NULL},
            {'reason': 'EMPTY_TEXT', 'field': 'content.attachment.data',
             'failed': trim(text, chr(9) || chr(10) || chr(13) || ' ') = ''}
        ]),
        rwe_period_failure('date', date_text)
    ) AS _failure
FROM texts
