-- Staged notes -> NOTE (text already redacted in staging). Type: EHR.
-- note_class_concept_id: the note type's code (LOINC document ontology in Synthea) through its valid
--   "Maps to" standard concept, or the concept itself when it is standard; 0 when the vocabulary has
--   neither, the code kept in note_source_value. Athena ships LOINC document codes as standard LOINC
--   concepts that map to themselves, with 'Has kind' to a document-kind part such as 706391 Note: what
--   the v5.4 specification accepts for this field. The bundled vocab/ subset has none of them (the
--   sample's notes are 34117-2 and 34111-5), so the demo's notes get 0.
-- encoding_concept_id: UTF-8 (32678, the one value the v5.4 specification names) when the loaded
--   vocabulary holds it, else 0. Staging reads each note in its charset and holds it as UTF-8.
-- language_concept_id: the language the source states (staged BCP-47 tag), through note_language
--   below; 0 when it states none, or a language the vocabulary has no concept for (the tag is then
--   reported in results.unmapped_codes, code_kind 'language': NOTE has no field for it).
-- visit and provider: the visit's ids (visit_link), else the note's own author for the provider.
-- The source concepts of the distinct note codes first, as a table: DuckDB then knows they are few and
-- looks up only their relationships, not all of a full vocabulary's CONCEPT_RELATIONSHIP.
-- note_language: each staged tag's concept. The v5.4 specification asks for a descendant of 4182347
-- World Languages: SNOMED's language qualifiers ('English language', 'Spanish language'), which OMOP
-- moved to the Language domain in 2022. Their codes are no BCP-47 tags, so the tag's primary subtag
-- (ISO 639-1; 'en' of 'en-US', any case) gives the ISO 639 English name, and the concept is the valid
-- one named '<name> language' in that domain (or a SNOMED qualifier value, as vocabularies before 2022
-- hold them); English also by its id (4180186, the id OHDSI gives English synonyms) whatever its name.
CREATE OR REPLACE TEMP TABLE note_language AS
WITH tags AS (
    SELECT DISTINCT language, lower(split_part(replace(trim(language), '_', '-'), '-', 1)) AS subtag
    FROM stg_note WHERE language IS NOT NULL
),
iso639(subtag, name) AS (VALUES
    ('ar', 'Arabic'), ('bn', 'Bengali'), ('cs', 'Czech'), ('da', 'Danish'), ('de', 'German'),
    ('el', 'Greek'), ('en', 'English'), ('es', 'Spanish'), ('fa', 'Persian'), ('fi', 'Finnish'),
    ('fr', 'French'), ('he', 'Hebrew'), ('hi', 'Hindi'), ('hr', 'Croatian'), ('ht', 'Haitian Creole'),
    ('hu', 'Hungarian'), ('it', 'Italian'), ('ja', 'Japanese'), ('ko', 'Korean'), ('nl', 'Dutch'),
    ('no', 'Norwegian'), ('pa', 'Panjabi'), ('pl', 'Polish'), ('pt', 'Portuguese'), ('ro', 'Romanian'),
    ('ru', 'Russian'), ('so', 'Somali'), ('sr', 'Serbian'), ('sv', 'Swedish'), ('tl', 'Tagalog'),
    ('tr', 'Turkish'), ('uk', 'Ukrainian'), ('ur', 'Urdu'), ('vi', 'Vietnamese'), ('zh', 'Chinese')
),
named AS (  -- the lowest id when a vocabulary has two concepts of one name
    SELECT lower(c.concept_name) AS concept_name, min(c.concept_id) AS concept_id
    FROM cdm.concept c
    WHERE c.invalid_reason IS NULL AND lower(c.concept_name) LIKE '% language'
      AND (c.domain_id = 'Language' OR (c.vocabulary_id = 'SNOMED' AND c.concept_class_id = 'Qualifier Value'))
    GROUP BY lower(c.concept_name)
)
SELECT t.language,
       coalesce(if(t.subtag = 'en', (SELECT concept_id FROM cdm.concept WHERE concept_id = $english), NULL),
                n.concept_id, 0) AS language_concept_id
FROM tags t
LEFT JOIN iso639 i USING (subtag)
LEFT JOIN named n ON n.concept_name = lower(i.name) || ' language';

CREATE OR REPLACE TEMP TABLE note_source AS
SELECT c.vocabulary_id, c.code, sc.concept_id AS source_concept_id, sc.standard_concept
FROM (SELECT DISTINCT vocabulary_id, code FROM stg_note) c
LEFT JOIN cdm.concept sc ON sc.vocabulary_id = c.vocabulary_id AND sc.concept_code = c.code;

INSERT INTO cdm.note BY NAME
WITH source_concept AS (
    SELECT n.*, s.source_concept_id, s.standard_concept
    FROM stg_note n
    JOIN note_source s ON s.vocabulary_id IS NOT DISTINCT FROM n.vocabulary_id AND s.code IS NOT DISTINCT FROM n.code
),
maps_to AS (  -- one standard class per source concept in use (the lowest id if a code maps to several)
    SELECT cr.concept_id_1, min(t.concept_id) AS concept_id
    FROM cdm.concept_relationship cr
    JOIN cdm.concept t ON t.concept_id = cr.concept_id_2 AND t.standard_concept = 'S'
    WHERE cr.relationship_id = 'Maps to' AND cr.invalid_reason IS NULL
      AND cr.concept_id_1 IN (SELECT source_concept_id FROM note_source)
    GROUP BY cr.concept_id_1
),
classed AS (
    SELECT s.*, coalesce(m.concept_id, if(s.standard_concept = 'S', s.source_concept_id, NULL), 0)
               AS note_class_concept_id
    FROM source_concept s LEFT JOIN maps_to m ON m.concept_id_1 = s.source_concept_id
)
SELECT i.id AS note_id,
       CAST(x.person_id AS INTEGER) AS person_id,
       n.note_datetime::DATE AS note_date,
       n.note_datetime,
       $type_ehr AS note_type_concept_id,
       n.note_class_concept_id,
       left(n.title, 250) AS note_title,
       n.note_text,
       coalesce((SELECT concept_id FROM cdm.concept WHERE concept_id = $utf8), 0) AS encoding_concept_id,
       coalesce(l.language_concept_id, 0) AS language_concept_id,
       coalesce(v.provider_id, p.id) AS provider_id,
       v.visit_occurrence_id, v.visit_detail_id,
       left(n.code, 50) AS note_source_value
FROM classed n
JOIN crosswalk x USING (source_system, source_person_id)
JOIN ids_note i ON i.natural_key = n.source_system || '|' || n.record_key
LEFT JOIN visit_link v ON v.visit_key = n.source_system || '|' || n.visit_key
LEFT JOIN ids_provider p ON p.natural_key = n.source_system || '|' || n.provider_key
LEFT JOIN note_language l ON l.language = n.language
