-- Synthea allergies.csv -> staging.event ('allergy'; the CDM build writes every allergy to OBSERVATION,
-- the substance as value_as_concept_id). CODE is the substance; SYSTEM names the code system
-- (SNOMED-CT, RxNorm); an unknown system keeps its name as vocabulary_id and simply does not map.
-- CATEGORY (food, medication, environment) -> value_as_string; TYPE (allergy, intolerance) -> allergy_type.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('allergies', PATIENT, ENCOUNTER, CODE, START) AS record_key, true AS _natural_key,
    'allergies' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'allergy' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(START) AS start_datetime,
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    CASE upper(rwe_text(SYSTEM)) WHEN 'SNOMED-CT' THEN 'SNOMED' WHEN 'SNOMED' THEN 'SNOMED' WHEN 'RXNORM' THEN 'RxNorm'
        ELSE coalesce(rwe_text(SYSTEM), 'SNOMED') END AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(value_as_string := rwe_text(CATEGORY))),
    lower(rwe_text(TYPE)) AS allergy_type,
    rwe_csv_event_failure('PATIENT', PATIENT, 'CODE', CODE, 'START', START, 'STOP', STOP) AS _failure
FROM raw_allergies
