-- FHIR R4 Patient -> staging.person_pii (identifiers for linkage only).
-- Name: the 'official' name, else 'usual', else the first name not marked old/maiden, else the first;
--   given_name is its FIRST given name (the others are middle names, as Synthea's CSV FIRST column);
--   maiden_name is the family of the name with use 'maiden'. Names are kept as written (Synthea's
--   digit suffixes included); linkage normalizes.
-- birth_date: the full date or NULL (missing, partial, impossible: still staged); birth_year and
--   birth_month keep what a partial date ('1948', '1948-08') tells.
-- sex: Patient.gender as written ('female', 'male', ...), not recoded to F/M here.
-- Address: as person_source (rwe_fhir_home_address: home, else first not 'old', else first); its lines
--   joined by a space.
-- phone: the first telecom with system 'phone'; email: the first with system 'email' (linkage only).
-- ssn: identifier with system http://hl7.org/fhir/sid/us-ssn (or type code SS);
-- drivers_license: identifier of type code DL; passport: identifier of type code PPN (v2-0203 codes).
-- contact_names: every given, family and text name of Patient.contact (relatives, guardians), for the
--   note de-identification only.
-- identifiers: every Patient.identifier with a value as {type, system, value}, raw values (linkage
--   normalizes), sorted. type from the registry entry mapping its system (sources.yaml `identifiers`),
--   else its v2-0203 type code (MR PI PT MRT: mrn; MB SN MC MA: member_id; SS NI NH JHN NNxxx:
--   national_id; DL: drivers_license; PPN: passport), else national_id for the US SSN system, else
--   'other' (a number its system assigns: linkage counts it only when it agrees). An SS without system
--   is a US SSN; an NNxxx without system gets 'nnxxx' (the country). Then the fields the registry entry
--   declares, read from the resource (`id`: the Patient's own id, an MRN of the source's site).
WITH src AS (
    SELECT resource_id, resource_json, _source_file, _line_number, _batch_id, _ingested_at,
        from_json(resource_json, '{
            "meta": {"lastUpdated": "VARCHAR"},
            "gender": "VARCHAR", "birthDate": "VARCHAR",
            "name": [{"use": "VARCHAR", "family": "VARCHAR", "given": ["VARCHAR"]}],
            "address": [{"use": "VARCHAR", "line": ["VARCHAR"], "city": "VARCHAR", "state": "VARCHAR",
                         "postalCode": "VARCHAR"}],
            "telecom": [{"system": "VARCHAR", "value": "VARCHAR"}],
            "identifier": [{"system": "VARCHAR", "value": "VARCHAR",
                            "type": {"coding": [{"system": "VARCHAR", "code": "VARCHAR"}]}}],
            "contact": [{"name": {"family": "VARCHAR", "given": ["VARCHAR"], "text": "VARCHAR"}}]
        }') AS r
    FROM raw_patient
),
registry AS (
    SELECT rwe_identifier_fields() AS fields
),
parts AS (
    SELECT *,
        coalesce(list_filter(r.name, n -> n.use = 'official')[1],
                 list_filter(r.name, n -> n.use = 'usual')[1],
                 list_filter(r.name, n -> coalesce(n.use, '') NOT IN ('old', 'maiden'))[1],
                 r.name[1]) AS person_name,
        rwe_fhir_home_address(r.address) AS addr,
        list_transform(list_filter(coalesce(r.identifier, []), i -> rwe_text(i.value) IS NOT NULL), i -> {
            'codes': list_transform(coalesce(i.type.coding, []), c -> upper(rwe_text(c.code))),
            'system': rwe_text(i.system), 'value': rwe_text(i.value)}) AS ids
    FROM src, registry
),
typed AS (
    SELECT *,
        list_transform(ids, i -> {
            'type': coalesce(
                list_filter(fields, f -> f.path IS NULL AND lower(f.match_system) = lower(i.system))[1].type,
                list_filter(list_transform(i.codes, c -> CASE
                    WHEN c IN ('MR', 'PI', 'PT', 'MRT') THEN 'mrn'
                    WHEN c IN ('MB', 'SN', 'MC', 'MA') THEN 'member_id'
                    WHEN c IN ('SS', 'NI', 'NH', 'JHN') OR regexp_full_match(c, 'NN[A-Z]{3}') THEN 'national_id'
                    WHEN c = 'DL' THEN 'drivers_license'
                    WHEN c = 'PPN' THEN 'passport' END), t -> t IS NOT NULL)[1],
                CASE WHEN lower(i.system) = 'http://hl7.org/fhir/sid/us-ssn' THEN 'national_id' END,
                'other'),
            'system': coalesce(i.system,
                CASE WHEN list_contains(i.codes, 'SS') THEN 'http://hl7.org/fhir/sid/us-ssn' END,
                lower(list_filter(i.codes, c -> regexp_full_match(c, 'NN[A-Z]{3}'))[1])),
            'value': i.value}) AS stated_ids,
        list_filter(list_transform(list_filter(fields, f -> f.path IS NOT NULL), f -> {
            'type': f.type, 'system': coalesce(f.system, rwe_text(json_extract_string(resource_json, f.system_path))),
            'value': rwe_text(json_extract_string(resource_json, f.path))}), i -> i.value IS NOT NULL) AS declared_ids
    FROM parts
)
SELECT
    $source AS source_system,
    rwe_text(resource_id) AS record_key,
    'patient' AS _source_entity, _source_file, _line_number, _batch_id, _ingested_at,
    rwe_fhir_version_at(r.meta) AS _version_at,
    rwe_text(resource_id) AS source_person_id,
    rwe_text(person_name.given[1]) AS given_name,
    rwe_text(person_name.family) AS family_name,
    rwe_text(list_filter(r.name, n -> n.use = 'maiden')[1].family) AS maiden_name,
    rwe_date(r.birthDate) AS birth_date,
    rwe_birth_year(r.birthDate) AS birth_year,
    rwe_birth_month(r.birthDate) AS birth_month,
    rwe_text(r.gender) AS sex,
    rwe_text(list_filter(r.identifier, i -> i.system = 'http://hl7.org/fhir/sid/us-ssn'
        OR len(list_filter(i.type.coding, c -> c.code = 'SS')) > 0)[1].value) AS ssn,
    rwe_text(array_to_string(list_filter(addr.line, l -> rwe_text(l) IS NOT NULL), ' ')) AS address_line,
    rwe_text(addr.city) AS city,
    rwe_text(addr.state) AS state,
    rwe_text(addr.postalCode) AS zip,
    rwe_text(list_filter(r.telecom, t -> t.system = 'phone' AND rwe_text(t.value) IS NOT NULL)[1].value) AS phone,
    rwe_text(list_filter(r.telecom, t -> t.system = 'email' AND rwe_text(t.value) IS NOT NULL)[1].value) AS email,
    rwe_text(list_filter(r.identifier, i -> len(list_filter(i.type.coding, c -> c.code = 'DL')) > 0)[1].value)
        AS drivers_license,
    rwe_text(list_filter(r.identifier, i -> len(list_filter(i.type.coding, c -> c.code = 'PPN')) > 0)[1].value)
        AS passport,
    rwe_text(array_to_string(flatten(list_transform(coalesce(r.contact, []), c -> flatten([
        coalesce(c.name.given, []), [c.name.family], [c.name.text]]))), ' ')) AS contact_names,
    list_sort(stated_ids || declared_ids) AS identifiers,
    rwe_first_failure([
        {'reason': 'MISSING_ID', 'field': 'id', 'failed': rwe_text(resource_id) IS NULL}
    ]) AS _failure
FROM typed
