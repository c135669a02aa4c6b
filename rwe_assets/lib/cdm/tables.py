"""The CDM's event tables, named once for the build's modules (importing nothing, so that
lib/cdm/intermediates.py, which lib/cdm/sql.py imports, may use them as lib/cdm/steps.py does)."""

EVENT_TABLES = (
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "device_exposure",
)
