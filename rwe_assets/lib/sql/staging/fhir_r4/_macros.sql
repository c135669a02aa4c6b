-- Macros of the fhir_r4 profile, created before its SQL files run (lib/staging/build.py).
--
-- rwe_fhir_vocabulary(system): FHIR coding system URL -> OMOP vocabulary_id. The system is compared
--   trimmed, lower-cased and without a trailing '/'. Official FHIR URLs (terminologies-systems) and the
--   HL7 v3 OIDs that C-CDA-converted resources still carry are both accepted. An unknown system gives
--   NULL; the staging SQL then keeps the system URL itself as vocabulary_id, so the code is reported
--   as unmapped by the CDM build, never silently dropped.
--   Choosing among several codings (one rule in every file): drop codings without a code; take the
--   first whose system maps here; else the first coding left.
CREATE OR REPLACE MACRO rwe_fhir_vocabulary(system) AS
    CASE lower(rtrim(trim(system), '/'))
    WHEN 'http://snomed.info/sct' THEN 'SNOMED'
    WHEN 'urn:oid:2.16.840.1.113883.6.96' THEN 'SNOMED'
    WHEN 'http://www.nlm.nih.gov/research/umls/rxnorm' THEN 'RxNorm'
    WHEN 'urn:oid:2.16.840.1.113883.6.88' THEN 'RxNorm'
    WHEN 'http://loinc.org' THEN 'LOINC'
    WHEN 'urn:oid:2.16.840.1.113883.6.1' THEN 'LOINC'
    WHEN 'http://hl7.org/fhir/sid/cvx' THEN 'CVX'
    WHEN 'urn:oid:2.16.840.1.113883.12.292' THEN 'CVX'
    WHEN 'http://hl7.org/fhir/sid/icd-10-cm' THEN 'ICD10CM'
    WHEN 'urn:oid:2.16.840.1.113883.6.90' THEN 'ICD10CM'
    WHEN 'http://hl7.org/fhir/sid/icd-10' THEN 'ICD10'
    WHEN 'urn:oid:2.16.840.1.113883.6.3' THEN 'ICD10'
    WHEN 'http://hl7.org/fhir/sid/icd-9-cm' THEN 'ICD9CM'
    WHEN 'urn:oid:2.16.840.1.113883.6.103' THEN 'ICD9CM'
    WHEN 'urn:oid:2.16.840.1.113883.6.104' THEN 'ICD9Proc'
    WHEN 'http://www.cms.gov/medicare/coding/icd10' THEN 'ICD10PCS'
    WHEN 'urn:oid:2.16.840.1.113883.6.4' THEN 'ICD10PCS'
    WHEN 'http://www.ama-assn.org/go/cpt' THEN 'CPT4'
    WHEN 'urn:oid:2.16.840.1.113883.6.12' THEN 'CPT4'
    WHEN 'https://www.cms.gov/medicare/coding/hcpcsreleasecodesets' THEN 'HCPCS'
    WHEN 'http://www.cms.gov/medicare/coding/hcpcsreleasecodesets' THEN 'HCPCS'
    WHEN 'urn:oid:2.16.840.1.113883.6.285' THEN 'HCPCS'
    WHEN 'http://hl7.org/fhir/sid/ndc' THEN 'NDC'
    WHEN 'urn:oid:2.16.840.1.113883.6.69' THEN 'NDC'
    WHEN 'http://www.whocc.no/atc' THEN 'ATC'
    WHEN 'http://nucc.org/provider-taxonomy' THEN 'NUCC'
    WHEN 'http://unitsofmeasure.org' THEN 'UCUM'
    END;

-- rwe_fhir_ref(ref): a FHIR Reference.reference -> the id of the resource it points at.
--   Patient/123 -> 123; https://server/fhir/Patient/123/_history/2 -> 123; urn:uuid:6f1c... -> 6f1c...;
--   Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493 -> 9999974493 (a conditional
--   reference resolves to the identifier VALUE); '' or no match -> NULL.
--   The target's type is not checked: a subject that is Group/123 becomes '123' and is then
--   quarantined as ORPHAN_PERSON by the framework (no Patient 123 staged), never silently attached.
CREATE OR REPLACE MACRO rwe_fhir_ref(ref) AS rwe_text(regexp_extract(ref, '([^/:=|]+)(/_history/[^/]*)?$', 1));
