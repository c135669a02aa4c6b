-- DE-SynPUF beneficiary summary -> staging.person_source. The file has one row per beneficiary and
-- year; the person is one record (key DESYNPUF_ID). So that its yearly rows agree, each row carries the
-- person's values from their latest valid year (the most complete birth date: a full date, then one
-- that gives a year; then latest year, latest ingest) and the death date any year records (the latest,
-- should years disagree): the copies are then identical and merge as DUPLICATE_IDENTICAL
-- (staging/_merged). A row's own bad death date still quarantines that row; a missing or impossible
-- birth date does not (docs/data-formats.md, "Persons": birth_date NULL, birth_year/birth_month what
-- the text tells, birth_date_flag why). record_updated: 31 December of the latest year a beneficiary
-- file states the person (each file describes its calendar year); _version_at: 31 December of the row's
-- own year. Sex (BENE_SEX_IDENT_CD 1 male, 2 female) and race (BENE_RACE_CD) stay source codes; the
-- CDM maps them. SP_STATE_CODE and BENE_COUNTY_CD are SSA codes, not USPS/FIPS: not staged as a location.
WITH bene AS (
    SELECT *,
           coalesce(TRY_CAST(rwe_text(YEAR) AS INTEGER),
                    TRY_CAST(regexp_extract(_source_file, '([0-9]{4})_Beneficiary_Summary', 1) AS INTEGER)) AS _year
    FROM raw_beneficiary_summary
),
person AS (
    SELECT *,
           first_value(rwe_text(BENE_BIRTH_DT)) OVER latest AS _birth,
           max(_year) OVER (PARTITION BY rwe_text(DESYNPUF_ID)) AS _last_year,
           first_value(rwe_text(BENE_SEX_IDENT_CD)) OVER latest AS _sex,
           first_value(rwe_text(BENE_RACE_CD)) OVER latest AS _race,
           max(rwe_date(BENE_DEATH_DT)) OVER (PARTITION BY rwe_text(DESYNPUF_ID)) AS _death
    FROM bene
    WINDOW latest AS (PARTITION BY rwe_text(DESYNPUF_ID)
                      ORDER BY rwe_date(BENE_BIRTH_DT) IS NULL, rwe_birth_year(BENE_BIRTH_DT) IS NULL,
                               _year DESC NULLS LAST, _ingested_at DESC,
                               _batch_id DESC, _source_file, _line_number)
)
SELECT
    $source AS source_system,
    rwe_text(DESYNPUF_ID) AS record_key,
    'beneficiary_summary' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    -- the row's own year orders its versions (lib/staging/lifecycle.py), not the batch it came in: a
    -- year file delivered after a later year's is an older statement of the person (STALE_VERSION), so
    -- a run per batch keeps the later year's values, its death included, as a full build does
    make_date(_year, 12, 31)::TIMESTAMPTZ AS _version_at,
    rwe_text(DESYNPUF_ID) AS source_person_id,
    rwe_date(_birth) AS birth_date,
    rwe_birth_year(_birth) AS birth_year,
    rwe_birth_month(_birth) AS birth_month,
    rwe_birth_flag(_birth) AS birth_date_flag,
    make_date(_last_year, 12, 31)::TIMESTAMP AS record_updated,
    _death AS death_date,
    _sex AS gender_source_value,
    _race AS race_source_value,
    NULL AS ethnicity_source_value,
    NULL AS city, NULL AS state, NULL AS zip, NULL AS county,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'DESYNPUF_ID', 'failed': rwe_text(DESYNPUF_ID) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'BENE_DEATH_DT', 'failed': rwe_bad_date(BENE_DEATH_DT)},
        {'reason': 'BIRTH_AFTER_DEATH', 'field': 'BENE_DEATH_DT',
         'failed': coalesce(_death < rwe_date(_birth), year(_death) < rwe_birth_year(_birth))}
    ]) AS _failure
FROM person
