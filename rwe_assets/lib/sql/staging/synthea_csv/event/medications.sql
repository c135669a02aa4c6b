-- Synthea medications.csv -> staging.event ('drug'); CODE is RxNorm.
-- quantity = DISPENSES (number of dispensings). A row covers START..STOP with DISPENSES fills, so
-- days_supply is the supply of one fill: the days from START to STOP divided by the fills, at least 1
-- (a same-day order). A still-active prescription has no STOP and no days_supply. The exposure itself
-- still ends at STOP (drug_exposure_end_date), so eras see the whole course.
SELECT
    $source AS source_system,
    rwe_csv_natural_key('medications', PATIENT, ENCOUNTER, CODE, START) AS record_key, true AS _natural_key,
    'medications' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    'drug' AS event_kind,
    rwe_text(PATIENT) AS source_person_id,
    rwe_text(ENCOUNTER) AS visit_key,
    rwe_ts(START) AS start_datetime,
    rwe_ts_end(START, STOP) AS end_datetime,
    rwe_text(CODE) AS code,
    'RxNorm' AS vocabulary_id,
    rwe_text(DESCRIPTION) AS code_description,
    unnest(rwe_csv_event_values(
        quantity := rwe_num(DISPENSES),
        -- greatest(1, NULL) is 1 in DuckDB: without STOP the supply is not stated, so NULL
        days_supply := CASE WHEN rwe_ts(STOP) IS NOT NULL THEN CAST(greatest(1, round(
            date_diff('day', rwe_ts(START)::DATE, rwe_ts(STOP)::DATE) / greatest(coalesce(rwe_num(DISPENSES), 1), 1)
        )) AS INTEGER) END)),
    rwe_csv_medication_failure(PATIENT, CODE, START, STOP, DISPENSES) AS _failure
FROM raw_medications
