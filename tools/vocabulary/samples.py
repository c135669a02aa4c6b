"""The codes the bundled samples use: Synthea CSV, FHIR NDJSON and DE-SynPUF claims, each code with its
vocabulary, and extra code lists."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

# Sample code system URIs (FHIR) to OMOP vocabulary_id.
FHIR_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://loinc.org": "LOINC",
    "http://unitsofmeasure.org": "UCUM",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD9CM",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://www.ama-assn.org/go/cpt": "CPT4",
}

# Synthea CSV export: file -> [(code column, vocabulary_id or None to read the SYSTEM column)].
SYNTHEA_CODE_COLUMNS: dict[str, list[tuple[str, str | None]]] = {
    "conditions": [("CODE", "SNOMED")],
    "medications": [("CODE", "RxNorm"), ("REASONCODE", "SNOMED")],
    "procedures": [("CODE", "SNOMED"), ("REASONCODE", "SNOMED")],
    "observations": [("CODE", "LOINC"), ("UNITS", "UCUM")],
    "immunizations": [("CODE", "CVX")],
    "allergies": [("CODE", None), ("REACTION1", "SNOMED"), ("REACTION2", "SNOMED")],
    "careplans": [("CODE", "SNOMED"), ("REASONCODE", "SNOMED")],
    "devices": [("CODE", "SNOMED")],
    "supplies": [("CODE", "SNOMED")],
    "encounters": [("CODE", "SNOMED"), ("REASONCODE", "SNOMED")],
    "imaging_studies": [("BODYSITE_CODE", "SNOMED"), ("PROCEDURE_CODE", "SNOMED")],
}
SYNTHEA_SYSTEMS = {"SNOMED-CT": "SNOMED", "SNOMED": "SNOMED", "RxNorm": "RxNorm", "RXNORM": "RxNorm"}

SAMPLE_CODE_COLUMNS = ["vocabulary_id", "concept_code", "sample"]

# --------------------------------------------------------------------------------------------
# Sample codes
# --------------------------------------------------------------------------------------------


def icd9_diagnosis_dotted(code: str) -> str:
    """ICD-9-CM diagnosis as in SynPUF (no dot) -> Athena concept_code (dotted)."""
    code = code.strip().upper()
    if code.startswith("E"):
        return code if len(code) <= 4 else f"{code[:4]}.{code[4:]}"
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def icd9_procedure_dotted(code: str) -> str:
    """ICD-9-CM procedure (volume 3) as in SynPUF -> Athena ICD9Proc concept_code."""
    code = code.strip()
    return code if len(code) <= 2 else f"{code[:2]}.{code[2:]}"


def hcpcs_vocabulary(code: str) -> str:
    """Level I HCPCS codes (five digits, or four digits + F/T/U) are CPT4 in OMOP."""
    return "CPT4" if re.fullmatch(r"\d{4}[0-9FTU]", code) else "HCPCS"


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [h.strip().strip('"') for h in next(csv.reader(fh), [])]


def _synthea_codes(path: Path) -> Iterator[tuple[str, str]]:
    stem = path.stem.lower()
    columns = SYNTHEA_CODE_COLUMNS.get(stem)
    if columns is None:
        return
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for column, vocabulary in columns:
                value = (row.get(column) or "").strip()
                if not value or value.lower() in {"null", "none", "nan"}:
                    continue
                vocab = vocabulary or SYNTHEA_SYSTEMS.get((row.get("SYSTEM") or "").strip())
                if vocab:
                    yield vocab, value


def _synpuf_codes(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for column, raw in row.items():
                value = (raw or "").strip()
                if not value or column is None:
                    continue
                name = column.upper()
                if "ICD9_DGNS_CD" in name:
                    yield "ICD9CM", icd9_diagnosis_dotted(value)
                elif name.startswith("ICD9_PRCDR_CD"):
                    yield "ICD9Proc", icd9_procedure_dotted(value)
                elif name.startswith("HCPCS_CD"):
                    yield hcpcs_vocabulary(value), value
                elif name == "PROD_SRVC_ID":
                    yield "NDC", value


def _fhir_codings(node: object) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        system, code = node.get("system"), node.get("code")
        if isinstance(system, str) and isinstance(code, str) and system in FHIR_SYSTEMS:
            yield FHIR_SYSTEMS[system], code
        for value in node.values():
            yield from _fhir_codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _fhir_codings(value)


def _ndjson_codes(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield from _fhir_codings(json.loads(line))


def gather_sample_codes(sample_dirs: Iterable[Path]) -> pl.DataFrame:
    """Distinct (vocabulary_id, concept_code, sample) found in Synthea CSV, FHIR NDJSON and
    CMS DE-SynPUF sample folders (searched recursively)."""
    found: set[tuple[str, str, str]] = set()
    for folder in sample_dirs:
        folder = Path(folder)
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            suffix = path.suffix.lower()
            if suffix == ".ndjson":
                codes: Iterable[tuple[str, str]] = _ndjson_codes(path)
            elif suffix == ".csv":
                header = _csv_header(path)
                if "DESYNPUF_ID" in header:
                    codes = _synpuf_codes(path)
                elif path.stem.lower() in SYNTHEA_CODE_COLUMNS and {
                    c for c, _ in SYNTHEA_CODE_COLUMNS[path.stem.lower()]
                } <= {h.upper() for h in header}:
                    codes = _synthea_codes(path)
                else:
                    continue
            else:
                continue
            found.update((vocab, code, folder.name) for vocab, code in codes)
    rows = sorted(found)
    return pl.DataFrame(
        {
            "vocabulary_id": [r[0] for r in rows],
            "concept_code": [r[1] for r in rows],
            "sample": [r[2] for r in rows],
        },
        schema={c: pl.String for c in SAMPLE_CODE_COLUMNS},
    )


def read_code_list(path: Path) -> pl.DataFrame:
    """A curated list of (vocabulary_id, concept_code[, reason]) to keep."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    return frame.select(
        pl.col("vocabulary_id").str.strip_chars(),
        pl.col("concept_code").str.strip_chars(),
        pl.lit(path.name).alias("sample"),
    )
