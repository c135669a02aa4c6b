"""What generate() wrote, file by file: the GenerationReport (also truth/report.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# clinical entities counted as events (EHR rows, claims, drug events, genotype calls)
EVENT_ENTITIES = {
    "ehr_site_a": {
        "encounters",
        "conditions",
        "medications",
        "procedures",
        "observations",
        "immunizations",
        "allergies",
        "devices",
    },
    "ehr_site_b": {
        "encounter",
        "condition",
        "medicationrequest",
        "procedure",
        "observation",
        "immunization",
        "allergyintolerance",
        "device",
    },
    "payer": {"inpatient_claims", "outpatient_claims", "carrier_claims", "prescription_drug_events"},
}


@dataclass
class FileStats:
    source: str
    batch: str
    entity: str
    path: str  # relative to OUT_DIR
    rows: int = 0  # data lines (records), malformed ones included
    malformed_rows: int = 0
    invalid_date_rows: int = 0
    unmapped_code_rows: int = 0
    non_ref_calls: int = 0  # VCF only
    bytes: int = 0


@dataclass
class GenerationReport:
    """What generate() wrote. Deterministic: no times, no absolute paths."""

    persons: int
    seed: int
    batches: list[str]
    chunk_size: int
    compress: bool
    config: dict[str, float]
    files: list[FileStats] = field(default_factory=list)
    source_records: dict[str, int] = field(default_factory=dict)
    duplicate_records: dict[str, int] = field(default_factory=dict)
    noise: dict[str, dict[str, int]] = field(default_factory=dict)
    lab_samples: int = 0
    carriers: int = 0
    breast_cancer: int = 0
    twins: int = 0
    deaths: int = 0
    tabix_indexed: bool = True

    @property
    def rows_written(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes_written(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def clinical_events(self) -> int:
        total = sum(
            f.rows - f.malformed_rows for f in self.files if f.entity in EVENT_ENTITIES.get(f.source, ())
        )
        return total + sum(f.non_ref_calls for f in self.files)

    @property
    def events_per_person(self) -> float:
        return self.clinical_events / self.persons if self.persons else 0.0

    def malformed_rows(self, source: str | None = None, entity: str | None = None) -> int:
        return sum(
            f.malformed_rows
            for f in self.files
            if (source is None or f.source == source) and (entity is None or f.entity == entity)
        )

    def files_of(self, source: str, batch: str | None = None) -> list[FileStats]:
        return [f for f in self.files if f.source == source and (batch is None or f.batch == batch)]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows_written"] = self.rows_written
        out["bytes_written"] = self.bytes_written
        out["clinical_events"] = self.clinical_events
        out["events_per_person"] = round(self.events_per_person, 3)
        return out
