-- FHIR R4 DocumentReference -> staging.note. Synthea writes one per encounter: a clinical note as a
-- base64 text/plain attachment; EHR servers also send the same note as text/html, a PDF beside it, or
-- the text only behind a url.
-- note_datetime: date, else context.period.start. code: type.coding (LOINC document type, chosen as in
--   _macros.sql); title: that coding's display, else type.text.
-- note_text: of the attachments with inline data, the first text/plain (no contentType counts as
--   text/plain), else the first text/html, else the first one (so its type is reported); without any,
--   the first attachment (MISSING_TEXT). The bytes are read in the attachment's charset: none, a WHATWG
--   label of UTF-8 or us-ascii as UTF-8 (a byte order mark dropped); a WHATWG label of windows-1252
--   (every ISO-8859-1 label: iso-8859-1, latin1, x-cp1252, iso-ir-100, cp819, ...) as windows-1252;
--   another charset ('latin-1' included: no WHATWG label) is UNSUPPORTED_CHARSET.
--   HTML becomes plain text: head, title, script, style and comments dropped, line-ending tags (br, p,
--   div, li, tr, h1-h6) a line break, cells a tab, every other tag a space, then all HTML5 character
--   references decoded, so that the de-identification sees the words a reader sees ('Ann</td><td>Lee',
--   'M&uuml;ller', 'Dr.&nbsp;Smith' would hide a name from it); a no-break space (U+00A0) becomes a
--   space in any note.
--   The patient's identifiers are redacted from the text afterwards, by the framework
--   (redact_note_identifiers in lib/staging/build.py, which calls lib/staging/deid.py), before anything is written.
-- language: as sent (trimmed), a BCP-47 tag such as en, en-US or es: the chosen attachment's language,
--   else the resource's; NULL when neither states one (the CDM maps it, lib/sql/cdm/note.sql).
-- source_person_id (subject), visit_key (context.encounter[0]), provider_key: the first author that is
--   a Practitioner (an Organization, Patient or Device author is no provider).
-- record_key: the resource id.
-- Rules: id required; status or docStatus 'entered-in-error' -> ENTERED_IN_ERROR ('superseded', which
--   Synthea writes on every note, is staged: the note is still what was written at that visit;
--   docStatus preliminary and amended are staged: text that was written; a later version replaces it
--   under its id); a note that another note of the staged files replaces (its current version's
--   relatesTo code 'replaces', the version the lifecycle keeps: a stale one re-sent replaces nothing;
--   if that version stages by its own rules) -> REPLACED, a status reason that retires it, so the
--   corrected note is the only one ('appends', 'transforms', 'signs' keep both: an addendum is a note
--   of its own); subject required; a parseable date; an attachment with inline data (a note held
--   only by URL is MISSING_TEXT: its text is not in the export); text/plain or text/html (else
--   UNSUPPORTED_CONTENT_TYPE: a PDF, RTF or image is no text the CDM can hold); a charset read as
--   above (else UNSUPPORTED_CHARSET); data that is not base64 of text in that charset -> INVALID_TEXT;
--   a text of nothing but white space -> EMPTY_TEXT.
WITH note_versions AS (
    SELECT rwe_text(resource_id) AS id,
           rwe_fhir_version_at(from_json(resource_json, '{"meta": {"lastUpdated": "VARCHAR"}}').meta) AS version_at,
           resource_json, _batch_id, _ingested_at, _source_file, _line_number
    FROM raw_documentreference
),
replaced AS (  -- the notes that the current version of another note (the lifecycle's rule,
               -- rwe_fhir_current_versions) replaces (relatesTo), with that version's row: it retires
               -- them only if it stages itself (`retired` below)
    SELECT DISTINCT _batch_id, _source_file, _line_number, unnest(rwe_fhir_replaced_notes(resource_json)) AS note_id
    FROM rwe_fhir_current_versions('note_versions')
),
src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"}, "language": "VARCHAR",
            "status": "VARCHAR", "docStatus": "VARCHAR",
            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}], "text": "VARCHAR"},
            "subject": {"reference": "VARCHAR"}, "date": "VARCHAR",
            "author": [{"reference": "VARCHAR", "type": "VARCHAR"}],
            "context": {"encounter": [{"reference": "VARCHAR"}], "period": {"start": "VARCHAR"}},
            "content": [{"attachment": {"contentType": "VARCHAR", "language": "VARCHAR", "data": "VARCHAR"}}]
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
                      '"'''), '') AS charset,
        try(from_base64(attachment.data)) AS bytes
    FROM chosen
),
labelled AS (  -- the WHATWG Encoding Standard's labels of UTF-8 and of windows-1252 (which it reads for
               -- every ISO-8859-1 label; 'latin-1' is none of them); US-ASCII stays UTF-8 here, as it
               -- reads pure ASCII the same and a mislabelled UTF-8 note is kept
    SELECT *, CASE
        WHEN charset IN ('', 'utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8',
                         'x-unicode20utf8', 'us-ascii', 'ascii', 'ansi_x3.4-1968') THEN 'utf-8'
        WHEN charset IN ('windows-1252', 'x-cp1252', 'cp1252', 'cp819', 'csisolatin1',
                         'ibm819', 'iso-8859-1', 'iso-ir-100', 'iso8859-1', 'iso88591', 'iso_8859-1',
                         'iso_8859-1:1987', 'l1', 'latin1') THEN 'windows-1252' END AS encoding
    FROM typed
),
latin AS (  -- the bytes as hex, only for the charsets read byte by byte
    SELECT *, CASE WHEN encoding = 'windows-1252' THEN hex(bytes) END AS hex_bytes
    FROM labelled
),
decoded AS (
    SELECT *,
        CASE WHEN encoding = 'utf-8'
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
        encoding IS NULL AS unsupported_charset
    FROM latin
),
untagged AS (  -- every real tag a space or a line break (a bare '<' is text): 'Ann</td><td>Lee' stays two words
    SELECT *, CASE WHEN mime = 'text/html' THEN regexp_replace(regexp_replace(regexp_replace(regexp_replace(
                  regexp_replace(read_text, '(?is)<head\b.*?</head\s*>', ' ', 'g'),
                  '(?is)<(script|style|title)\b.*?</(script|style|title)\s*>|<!--.*?(-->|$)', ' ', 'g'),
                  '(?i)<br\b[^>]*>|</(p|div|li|tr|h[1-6])\s*>', chr(10), 'g'),
                  '(?i)</?(td|th)\b[^>]*>', chr(9), 'g'),
                  '<[A-Za-z/!?][^>]*>', ' ', 'g') END AS html_text
    FROM decoded
),
texts AS (  -- character references by the HTML5 table (rwe_html_unescape, lib/staging/build.py), after the
            -- tags ('&lt;p&gt;' is text), then the blanks the tags left at line ends trimmed; a no-break
            -- space becomes a space: the recognizers read 'Dr.' and the name apart by spaces
    SELECT *,
        replace(CASE WHEN mime = 'text/html'
                     THEN regexp_replace(trim(rwe_html_unescape(html_text), chr(9) || chr(10) || chr(13) || ' '),
                                         '[ \t]*\n[ \t]*', chr(10), 'g')
                     ELSE read_text END, chr(160), ' ') AS text
    FROM untagged
),
checked AS (  -- each version's own failure, before it is known whether a staged note replaces it
    SELECT *,
        coalesce(
            rwe_fhir_status_failure(resource_id, 'status', [r.status]),
            rwe_fhir_status_failure(resource_id, 'docStatus', [r.docStatus]),
            rwe_first_failure([
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
        ) AS _own_failure
    FROM texts
),
retired AS (  -- replaced by a version that stages: a quarantined replacement retires nothing
    SELECT DISTINCT p.note_id FROM replaced p JOIN checked c USING (_batch_id, _source_file, _line_number)
    WHERE c._own_failure IS NULL AND p.note_id IS NOT NULL
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
    coalesce(rwe_text(attachment.language), rwe_text(r.language)) AS language,
    coalesce(_own_failure, rwe_first_failure([{'reason': 'REPLACED', 'field': 'id',
        'failed': rwe_text(resource_id) IN (SELECT note_id FROM retired)}])) AS _failure
FROM checked
