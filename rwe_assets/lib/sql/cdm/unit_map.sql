-- Unit source values -> UCUM unit concepts, per (unit, measured concept). Sources write UCUM codes,
-- with habits the OMOP UCUM vocabulary spells differently, and common non-UCUM spellings: unit_alias
-- (UNIT_ALIASES in build.py) gives the UCUM code of each spelling whose meaning is unambiguous (U/L is
-- concept code '[U]/L', kU/L '10*3.[U]/L', mmHg 'mm[Hg]', beats/minute '/min', degC 'Cel', ...).
-- C and F are UCUM's coulomb and farad, but what a source means by them for a temperature (a measured
-- concept whose name says temperature) is Cel and [degF]; for anything else they are ambiguous and
-- get concept 0 (TEMPERATURE_UNIT_ALIASES). A unit that is only a curly-brace annotation ('{score}',
-- '{#}') is dimensionless in UCUM: it gets no unit concept (NULL), as DQD expects for scores and
-- counts. The text 'null' is no unit. Anything else not found is concept 0, source kept, and reported
-- in results.unmapped_codes (code_kind 'unit').
CREATE OR REPLACE TEMP TABLE unit_map AS
WITH units AS (
    SELECT DISTINCT unit_source_value, concept_id FROM mapped_event WHERE unit_source_value IS NOT NULL
),
measured AS (
    SELECT u.*, coalesce(contains(lower(mc.concept_name), 'temperature'), false) AS is_temperature
    FROM units u
    LEFT JOIN cdm.concept mc ON mc.concept_id = u.concept_id AND u.concept_id <> 0
)
SELECT u.unit_source_value, u.concept_id,
       CASE WHEN lower(u.unit_source_value) = 'null' OR regexp_full_match(u.unit_source_value, '\{[^}]*\}')
                THEN NULL
            WHEN a.temperature_only AND NOT u.is_temperature THEN 0
            ELSE coalesce(c.concept_id, 0) END AS unit_concept_id
FROM measured u
LEFT JOIN unit_alias a ON a.source_code = u.unit_source_value
LEFT JOIN cdm.concept c
    ON c.vocabulary_id = 'UCUM' AND c.standard_concept = 'S'
   AND c.concept_code = coalesce(a.ucum_code, u.unit_source_value)
