-- Unit source values -> UCUM unit concepts. Sources write UCUM codes, with habits the OMOP UCUM
-- vocabulary spells differently: arbitrary units as bare U or IU ('U/L' is concept code '[U]/L'),
-- listed in unit_alias (UNIT_ALIASES in build.py). A unit that is only a curly-brace annotation
-- ('{score}', '{#}') is dimensionless in UCUM: it gets no unit concept (NULL), as DQD expects for
-- scores and counts. The text 'null' is no unit. Anything else not found is concept 0, source kept.
CREATE OR REPLACE TEMP TABLE unit_map AS
WITH units AS (
    SELECT DISTINCT unit_source_value FROM mapped_event WHERE unit_source_value IS NOT NULL
)
SELECT u.unit_source_value,
       CASE WHEN lower(u.unit_source_value) = 'null' OR regexp_full_match(u.unit_source_value, '\{[^}]*\}')
                THEN NULL
            ELSE coalesce(c.concept_id, 0) END AS unit_concept_id
FROM units u
LEFT JOIN unit_alias a ON a.source_code = u.unit_source_value
LEFT JOIN cdm.concept c
    ON c.vocabulary_id = 'UCUM' AND c.standard_concept = 'S'
   AND c.concept_code = coalesce(a.ucum_code, u.unit_source_value)
