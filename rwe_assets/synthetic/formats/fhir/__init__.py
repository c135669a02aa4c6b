"""EHR site B: a FHIR R4 bulk export (one NDJSON file per resource type, `<Type>.000.ndjson`, one
resource per line, references `Patient/<id>`, `Encounter/<id>`, `Practitioner/<id>`,
`Organization/<id>`), shaped like Synthea's bulk output with US Core profiles.

Modules by FHIR resource group: administration.py (Patient, Encounter, Device, Organization,
Practitioner), clinical_summary.py (Condition, Procedure, AllergyIntolerance), diagnostics.py
(Observation), medications.py (MedicationRequest, Immunization); template.py renders them, and
holds the skeleton every event resource shares (event_line, event_lines: type, id, profile, code,
patient and encounter references), so a writer states only its own columns and elements.
Lines are templated column-wise with polars (no per-resource Python), from escaped strings."""

from __future__ import annotations

from rwe_assets.synthetic.formats.common import Chunk, Piece
from rwe_assets.synthetic.formats.ehr import site_view
from rwe_assets.synthetic.formats.fhir.administration import (
    devices,
    encounters,
    organizations_and_practitioners,
    patients,
)
from rwe_assets.synthetic.formats.fhir.clinical_summary import allergies, conditions, procedures
from rwe_assets.synthetic.formats.fhir.diagnostics import observations
from rwe_assets.synthetic.formats.fhir.medications import immunizations, medication_requests
from rwe_assets.synthetic.formats.fhir.template import SOURCE

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Procedure",
    "Observation",
    "Immunization",
    "AllergyIntolerance",
    "Device",
    "Organization",
    "Practitioner",
)


def file_name(resource_type: str, compress: bool) -> str:
    return f"{resource_type}.000.ndjson.gz" if compress else f"{resource_type}.000.ndjson"


def render(chunk: Chunk) -> dict[str, Piece]:
    view = site_view(chunk, 1, SOURCE)
    out = {
        "Patient": patients(chunk, view),
        "Encounter": encounters(chunk, view),
        "Condition": conditions(chunk, view),
        "MedicationRequest": medication_requests(chunk, view),
        "Procedure": procedures(chunk, view),
        "Observation": observations(chunk, view),
        "Immunization": immunizations(chunk, view),
        "AllergyIntolerance": allergies(chunk, view),
        "Device": devices(chunk, view),
    }
    if chunk.first_in_batch:
        out.update(organizations_and_practitioners(chunk))
    return out
