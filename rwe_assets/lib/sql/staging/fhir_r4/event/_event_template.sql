-- The staging SQL of a FHIR R4 event resource with one code, one subject and one period: filled once
-- per entry of _events.yaml by lib/staging/sql_templates.py ({name} placeholders, lib/sql/README.md), which
-- writes the row's rule above it. The resource is parsed once, with a schema listing only the elements
-- it reads; the checks are the status ones (with the row's status_checks), then the event ones
-- (_macros.sql), then the row's own. A row's measured_columns add a step computed over picked's columns.
WITH src AS (
    SELECT resource_id, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{schema}') AS r
    FROM {raw_view}
),
coded AS (
    SELECT src.*, rwe_fhir_codings({codings}) AS codings FROM src {join}
),
picked AS (
    SELECT *,
        rwe_fhir_pick_coding(codings) AS coding,
        rwe_fhir_ref(r.{person}.reference) AS person_ref,
        {visit_ref} AS visit_ref,
        {provider_ref} AS provider_ref,
        {start_text} AS start_text,
        {end_text} AS end_text{picked_columns}
    FROM coded
){measured}
SELECT
    $source AS source_system,
    {record_key} || rwe_text(resource_id) AS record_key,
    {entity} AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    {event_kind} AS event_kind, rwe_fhir_version_at(r.meta) AS _version_at,
    person_ref AS source_person_id,
    visit_ref AS visit_key,
    rwe_ts(start_text) AS start_datetime,
    {end_datetime} AS end_datetime,
    coding.code AS code,
    coding.vocabulary_id AS vocabulary_id,
    {code_description} AS code_description,
    NULL AS value_as_number, {value_as_string} AS value_as_string, NULL AS unit_source_value,
    {quantity} AS quantity, {days_supply} AS days_supply,
    provider_ref AS provider_key,{extra_columns}
    coalesce(
        rwe_fhir_status_failure(resource_id, {status_field}, {status_codes}{withdrawn}),{status_checks}
        rwe_fhir_event_failure({person_field}, person_ref, {code_field}, coding.code,
                               {start_field}, start_text{end_check}){row_checks}
    ) AS _failure
FROM {last_step}
