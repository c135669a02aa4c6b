"""Writers of the landing-zone formats: Synthea CSV, FHIR R4 NDJSON, DE-SynPUF, VCF + manifest."""
