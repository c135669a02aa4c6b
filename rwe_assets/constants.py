"""OMOP concept ids the pipeline writes itself, named once. Every id here exists in the bundled
vocabulary (vocab/CONCEPT.csv, with its provenance in vocab/PROVENANCE.csv); a test checks it."""

NO_MATCHING_CONCEPT = 0
CDM_VERSION_5_4 = 756265  # OMOP CDM Version 5.4.0

# Gender (vocabulary Gender)
MALE = 8507
FEMALE = 8532

# Race (vocabulary Race) and ethnicity (vocabulary Ethnicity)
WHITE = 8527
BLACK_OR_AFRICAN_AMERICAN = 8516
ASIAN = 8515
AMERICAN_INDIAN_OR_ALASKA_NATIVE = 8657
NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER = 8557
HISPANIC_OR_LATINO = 38003563
NOT_HISPANIC_OR_LATINO = 38003564

# Visit concepts (vocabulary Visit)
INPATIENT_VISIT = 9201
OUTPATIENT_VISIT = 9202
EMERGENCY_ROOM_VISIT = 9203
EMERGENCY_ROOM_AND_INPATIENT_VISIT = 262
HOME_VISIT = 581476

# Type concepts (v5.4 vocabulary "Type Concept"): where a record came from.
EHR = 32817
EHR_ENCOUNTER_RECORD = 32827
EHR_PRESCRIPTION = 32838
EHR_ADMINISTRATION_RECORD = 32818
LAB = 32856
CLAIM = 32810
PHARMACY_CLAIM = 32869
STANDARD_ALGORITHM_FROM_EHR = 32882
PERIOD_WHILE_ENROLLED_IN_INSURANCE = 44814722

# Condition status
PRIMARY_DIAGNOSIS = 32902
SECONDARY_DIAGNOSIS = 32908
# Condition Status 'Admission diagnosis' (a claim's admitting diagnosis); absent from the bundled
# vocabulary: written only when the loaded vocabulary has it (lib/sql/cdm/condition_occurrence.sql).
ADMITTING_DIAGNOSIS = 32890

# Allergies and intolerances (SNOMED): OBSERVATION.observation_concept_id of an allergy, the substance
# being value_as_concept_id. OHDSI's SNOMED mapping gives drug allergies 'Allergy to drug' and other
# allergies 'Allergic disposition'; the HL7 FHIR-to-OMOP IG names the intolerance concepts.
ALLERGY_TO_DRUG = 439224
ALLERGIC_DISPOSITION = 43530807
INTOLERANCE_TO_DRUG = 4240582
INTOLERANCE_TO_SUBSTANCE = 36684107

# Confirmed by the HL7 FHIR-to-OMOP IG but absent from the bundled vocabulary: written only when the
# loaded vocabulary has it (see lib/sql/cdm/visit_occurrence.sql).
TELEHEALTH = 722455
# NOTE.encoding_concept_id: the one value the v5.4 field specification names (UTF-8).
UTF8 = 32678
# NOTE.language_concept_id English: the language concept Athena's CONCEPT_SYNONYM rows carry for
# English synonyms (seen in the Eunomia GiBleed shard); its CONCEPT row is in neither shard.
ENGLISH = 4180186

OPTIONAL = {"TELEHEALTH", "UTF8", "ENGLISH", "ADMITTING_DIAGNOSIS"}
ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int) and name not in OPTIONAL
}
