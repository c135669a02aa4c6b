-- FHIR R4 Patient -> staging.person_source (no names, identifiers or street lines: see person_pii).
-- gender: Patient.gender as written (male, female, other, unknown).
-- race / ethnicity: the US Core race / ethnicity extension, first ombCategory display, else its
--   'text' sub-extension; kept as source values (mapped to concepts later, unknown -> 0).
-- city / state / zip / county: the home address, else the first address not marked 'old', else the
--   first address (rwe_fhir_home_address, _macros.sql); county is address.district.
-- Rules (as the Synthea profile): id required; a death date (deceasedDateTime), if present, parseable
-- and not before birth. deceasedBoolean (no date) is not a death date. birthDate may be missing,
-- partial or impossible without quarantining the patient (docs/data-formats.md, "Persons"): a partial
-- FHIR date ('1980', '1980-04') keeps birth_year (and birth_month), birth_date is NULL and
-- birth_date_flag says why. record_updated: Patient.meta.lastUpdated as an instant (UTC).
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "gender": "VARCHAR", "birthDate": "VARCHAR", "deceasedDateTime": "VARCHAR",
            "meta": {"lastUpdated": "VARCHAR"},
            "address": [{"use": "VARCHAR", "city": "VARCHAR", "district": "VARCHAR", "state": "VARCHAR",
                         "postalCode": "VARCHAR"}],
            "extension": [{"url": "VARCHAR", "extension": [{"url": "VARCHAR", "valueString": "VARCHAR",
                                                            "valueCoding": {"code": "VARCHAR", "display": "VARCHAR"}}]}]
        }') AS r
    FROM raw_patient
),
parts AS (
    SELECT *,
        rwe_fhir_home_address(r.address) AS addr,
        list_filter(r.extension,
            e -> e.url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')[1].extension AS race,
        list_filter(r.extension,
            e -> e.url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity')[1].extension AS ethnicity
    FROM src
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'patient' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    rwe_text(resource_id) AS source_person_id,
    rwe_date(r.birthDate) AS birth_date,
    rwe_birth_year(r.birthDate) AS birth_year,
    rwe_birth_month(r.birthDate) AS birth_month,
    rwe_birth_flag(r.birthDate) AS birth_date_flag,
    coalesce(rwe_instant(r.meta.lastUpdated)::TIMESTAMP, rwe_ts(r.meta.lastUpdated)) AS record_updated,
    rwe_date(r.deceasedDateTime) AS death_date,
    rwe_text(r.gender) AS gender_source_value,
    coalesce(rwe_text(list_filter(race, x -> x.url = 'ombCategory')[1].valueCoding.display),
             rwe_text(list_filter(race, x -> x.url = 'text')[1].valueString)) AS race_source_value,
    coalesce(rwe_text(list_filter(ethnicity, x -> x.url = 'ombCategory')[1].valueCoding.display),
             rwe_text(list_filter(ethnicity, x -> x.url = 'text')[1].valueString)) AS ethnicity_source_value,
    rwe_text(addr.city) AS city,
    rwe_text(addr.state) AS state,
    rwe_text(addr.postalCode) AS zip,
    rwe_text(addr.district) AS county,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL},
        {'reason': 'INVALID_DATE', 'field': 'deceasedDateTime', 'failed': rwe_bad_date(r.deceasedDateTime)},
        {'reason': 'BIRTH_AFTER_DEATH', 'field': 'deceasedDateTime',
         'failed': coalesce(rwe_date(r.deceasedDateTime) < rwe_date(r.birthDate),
                            year(rwe_date(r.deceasedDateTime)) < rwe_birth_year(r.birthDate))}
    ]) AS _failure
FROM parts
