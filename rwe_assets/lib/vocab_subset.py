"""Build the small OMOP vocabulary the project ships in ``vocab/``.

This is a maintainer tool. It reads partial vocabulary "shards" (folders in the Athena layout, or
the OHDSI/dbt-synthea seed layout) from a path given on the command line, keeps only the concepts
the bundled samples and the CDM itself need, adds the curated rows of
``rwe_assets/lib/vocab_additions/`` (each with the public source that confirms it), and writes the
Athena layout: tab-delimited ``CONCEPT.csv`` etc. with a header row, Athena column names and
order, and dates as YYYYMMDD. It also writes ``PROVENANCE.csv`` (where every row's facts came
from) and ``README.md`` (how the subset was built, sample coverage, gaps).

Rules, in the order they are applied:

* A concept present in several shards is taken from the first shard in ``shard_order``.
* Kept concepts are: the codes found in the sample folders, the codes of ``keep_codes.csv``,
  whole infrastructure vocabularies (Gender, Race, Visit, Type Concept, UCUM, ...), the curated
  concepts of ``concepts.csv``, then, until nothing changes, the targets of 'Maps to' /
  'Maps to value' / 'Concept replaced by' of kept concepts, the ingredients of kept drugs (via
  CONCEPT_ANCESTOR or 'RxNorm has ing') and the targets of the demo SOURCE_TO_CONCEPT_MAP.
* CONCEPT_RELATIONSHIP keeps the rows whose two ends are kept and whose relationship is one the
  ETL uses (``KEPT_RELATIONSHIPS``); CONCEPT_ANCESTOR, CONCEPT_SYNONYM (concept and language
  concept) and DRUG_STRENGTH keep the rows whose concepts are kept. The language concepts of the
  kept concepts' synonyms are kept when a shard has their CONCEPT row.
* VOCABULARY, CONCEPT_CLASS and RELATIONSHIP keep the rows the kept rows reference, DOMAIN is kept
  whole, and every row of these four tables gets its metadata concept in CONCEPT: a shard's row if
  one exists, else one derived from the row itself (``METADATA_CONCEPT_KINDS``, attributes in
  ``METADATA_CONCEPT_ATTRIBUTES``, documented where ``METADATA_CONVENTION_SOURCES`` says); this
  repeats until the metadata concepts' own vocabularies, classes and domain are covered.

Usage::

    python -m rwe_assets.lib.vocab_subset --shards DIR --out vocab \
        --samples ../shared/data/synthea27 --samples ../shared/data/fhir_bulk_synthea13 \
        --samples ../shared/data/synpuf_sample
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ADDITIONS_DIR = Path(__file__).parent / "vocab_additions"
CATALOGUE = Path(__file__).parent.parent / "synthetic" / "catalogue" / "clinical.yaml"
CATALOGUE_ORIGIN = "rwe_assets demo mapping (rwe_assets/synthetic/catalogue/clinical.yaml)"
DQD_CONCEPT_LEVEL = Path(__file__).parent / "spec" / "dqd_v5.4" / "OMOP_CDMv5.4_Concept_Level.csv"

DEFAULT_SHARD_ORDER = ("eunomia_synthea27nj", "eunomia_gibleed", "dbt_synthea")
# VOCABULARY, DOMAIN, CONCEPT_CLASS and RELATIONSHIP come preferably from the newest release.
DEFAULT_METADATA_ORDER = ("dbt_synthea", "eunomia_synthea27nj", "eunomia_gibleed")
METADATA_TABLES = frozenset({"VOCABULARY", "DOMAIN", "CONCEPT_CLASS", "RELATIONSHIP"})

# Athena column names and order of every table the subset writes.
TABLE_COLUMNS: dict[str, list[str]] = {
    "CONCEPT": [
        "concept_id",
        "concept_name",
        "domain_id",
        "vocabulary_id",
        "concept_class_id",
        "standard_concept",
        "concept_code",
        "valid_start_date",
        "valid_end_date",
        "invalid_reason",
    ],
    "CONCEPT_RELATIONSHIP": [
        "concept_id_1",
        "concept_id_2",
        "relationship_id",
        "valid_start_date",
        "valid_end_date",
        "invalid_reason",
    ],
    "CONCEPT_ANCESTOR": [
        "ancestor_concept_id",
        "descendant_concept_id",
        "min_levels_of_separation",
        "max_levels_of_separation",
    ],
    "VOCABULARY": [
        "vocabulary_id",
        "vocabulary_name",
        "vocabulary_reference",
        "vocabulary_version",
        "vocabulary_concept_id",
    ],
    "DOMAIN": ["domain_id", "domain_name", "domain_concept_id"],
    "CONCEPT_CLASS": ["concept_class_id", "concept_class_name", "concept_class_concept_id"],
    "RELATIONSHIP": [
        "relationship_id",
        "relationship_name",
        "is_hierarchical",
        "defines_ancestry",
        "reverse_relationship_id",
        "relationship_concept_id",
    ],
    "CONCEPT_SYNONYM": ["concept_id", "concept_synonym_name", "language_concept_id"],
    "DRUG_STRENGTH": [
        "drug_concept_id",
        "ingredient_concept_id",
        "amount_value",
        "amount_unit_concept_id",
        "numerator_value",
        "numerator_unit_concept_id",
        "denominator_value",
        "denominator_unit_concept_id",
        "box_size",
        "valid_start_date",
        "valid_end_date",
        "invalid_reason",
    ],
    "SOURCE_TO_CONCEPT_MAP": [
        "source_code",
        "source_concept_id",
        "source_vocabulary_id",
        "source_code_description",
        "target_concept_id",
        "target_vocabulary_id",
        "valid_start_date",
        "valid_end_date",
        "invalid_reason",
    ],
}

# Primary keys used to de-duplicate rows coming from several shards (first shard wins).
TABLE_KEYS: dict[str, list[str]] = {
    "CONCEPT": ["concept_id"],
    "CONCEPT_RELATIONSHIP": ["concept_id_1", "concept_id_2", "relationship_id"],
    "CONCEPT_ANCESTOR": ["ancestor_concept_id", "descendant_concept_id"],
    "VOCABULARY": ["vocabulary_id"],
    "DOMAIN": ["domain_id"],
    "CONCEPT_CLASS": ["concept_class_id"],
    "RELATIONSHIP": ["relationship_id"],
    "CONCEPT_SYNONYM": ["concept_id", "concept_synonym_name", "language_concept_id"],
    "DRUG_STRENGTH": ["drug_concept_id", "ingredient_concept_id"],
    "SOURCE_TO_CONCEPT_MAP": ["source_vocabulary_id", "source_code", "target_concept_id"],
}

INT_COLUMNS = {
    "concept_id",
    "concept_id_1",
    "concept_id_2",
    "ancestor_concept_id",
    "descendant_concept_id",
    "min_levels_of_separation",
    "max_levels_of_separation",
    "vocabulary_concept_id",
    "domain_concept_id",
    "concept_class_concept_id",
    "relationship_concept_id",
    "language_concept_id",
    "drug_concept_id",
    "ingredient_concept_id",
    "amount_unit_concept_id",
    "numerator_unit_concept_id",
    "denominator_unit_concept_id",
    "box_size",
    "source_concept_id",
    "target_concept_id",
}
DATE_COLUMNS = {"valid_start_date", "valid_end_date"}

# Relationships the ETL and the era builders use. Everything else (SPL, marketed forms, panels...)
# is dropped: it is most of the shards' size and nothing in the pipeline reads it.
KEPT_RELATIONSHIPS = frozenset(
    {
        "Maps to",
        "Mapped from",
        "Maps to value",
        "Value mapped from",
        "Is a",
        "Subsumes",
        "RxNorm has ing",
        "RxNorm ing of",
        "Concept replaced by",
        "Concept replaces",
    }
)
# Relationships whose target must be kept when the source concept is kept.
CLOSURE_RELATIONSHIPS = ("Maps to", "Maps to value", "Concept replaced by", "RxNorm has ing")

# Vocabularies small enough, and structural enough, to keep whole from the shards.
WHOLE_VOCABULARIES = frozenset(
    {
        "None",
        "Gender",
        "Race",
        "Ethnicity",
        "Visit",
        "Type Concept",
        "Condition Status",
        "CDM",
        "UCUM",
        "Domain",
        "Vocabulary",
    }
)

# Every VOCABULARY, DOMAIN, CONCEPT_CLASS and RELATIONSHIP row has a metadata concept of its own,
# which its *_concept_id points to: table -> (key column, name column, id column, kind). The kind is
# the metadata concept's vocabulary_id and concept_class_id; its domain is 'Metadata'.
METADATA_CONCEPT_KINDS: dict[str, tuple[str, str, str, str]] = {
    "VOCABULARY": ("vocabulary_id", "vocabulary_name", "vocabulary_concept_id", "Vocabulary"),
    "DOMAIN": ("domain_id", "domain_name", "domain_concept_id", "Domain"),
    "CONCEPT_CLASS": ("concept_class_id", "concept_class_name", "concept_class_concept_id", "Concept Class"),
    "RELATIONSHIP": ("relationship_id", "relationship_name", "relationship_concept_id", "Relationship"),
}
# Attributes OHDSI gives every such concept (besides id and name).
METADATA_CONCEPT_ATTRIBUTES = {
    "domain_id": "Metadata",
    "standard_concept": None,
    "concept_code": "OMOP generated",
    "valid_start_date": "19700101",
    "valid_end_date": "20991231",
    "invalid_reason": None,
}
_METADATA_DUMP = (
    "public code index file 49305030351 (PostgreSQL dump of an OMOP CDM v5 test database whose INSERT "
    "INTO concept rows are Athena rows), e.g. {examples}, all with domain 'Metadata', standard_concept "
    "NULL, concept_code 'OMOP generated', 1970-01-01 to 2099-12-31"
)
_METADATA_FK = (
    "OHDSI CDM wiki, VOCABULARY and CONCEPT_CLASS tables "
    "(https://ohdsi.org/web/wiki/doku.php?id=documentation%3Acdm%3Acdm%3Avocabulary&rev=1415979337 and "
    "...%3Aconcept_class&rev=1415982386): the *_concept_id is a foreign key to the concept of that row; "
    "shard evidence of the Metadata attributes: the eunomia_gibleed CONCEPT row 0 'No matching concept' "
    "(domain 'Metadata', standard_concept NULL, 19700101 to 20991231)"
)
# Where the conventions are documented, per kind (cited in PROVENANCE.csv for every derived row).
METADATA_CONVENTION_SOURCES: dict[str, str] = {
    "Vocabulary": (
        "OMOP documentation: OHDSI/Vocabulary-v5.0 working/packages/vocabulary_pack/AddNewVocabulary.sql "
        "(inserts concept (id, vocabulary_name, 'Metadata', 'Vocabulary', 'Vocabulary', NULL, "
        "'OMOP generated', 19700101, 20991231, NULL) and the VOCABULARY row pointing to it); "
        + _METADATA_DUMP.format(
            examples="44819096 'OMOP Standardized Vocabularies', 44819097 'Systematic Nomenclature of "
            "Medicine - Clinical Terms (IHTSDO)', 44819232 'OMOP Vocabulary' in vocabulary 'Vocabulary'"
        )
        + "; "
        + _METADATA_FK
    ),
    "Domain": (
        "OMOP documentation: OHDSI Vocabulary-v5.0 manual change adding the Plan, Sponsor, Payer and Plan "
        "Stop Reason domains (public code index file 11134428678: concept (id, domain_name, 'Metadata', "
        "'Domain', 'Domain', NULL, 'OMOP generated', 19700101, 20991231, NULL) and the DOMAIN row pointing "
        "to it); "
        + _METADATA_DUMP.format(examples="2 'Gender', 7 'Metadata', 19 'Condition' in vocabulary 'Domain'")
        + "; "
        + _METADATA_FK
    ),
    "Concept Class": (
        "OMOP documentation: OHDSI/Vocabulary-v5.0 working/manual_changes/2019/manual_changes_10-Sep-2019.sql "
        "(concept (id, concept_class_name, 'Metadata', 'Concept Class', 'Concept Class', NULL, 'OMOP "
        "generated', 19700101, 20991231, NULL) and the CONCEPT_CLASS row pointing to it); "
        + _METADATA_DUMP.format(
            examples="44818981 'Ingredient', 44819247 'OMOP Concept Class', 44819279 'OMOP Vocabulary' in "
            "vocabulary 'Concept Class'"
        )
        + "; "
        + _METADATA_FK
    ),
    "Relationship": (
        "OMOP documentation: OHDSI/Vocabulary-v5.0 CVX/pre_generic(temp).sql and a Vocabulary-v5.0 manual "
        "change adding the PPI relationships (public code index file 10957795786: concept (id, "
        "relationship_name, 'Metadata', 'Relationship', 'Relationship', NULL, 'OMOP generated', 19700101, "
        "20991231, NULL) and the RELATIONSHIP row pointing to it); "
        + _METADATA_DUMP.format(examples="44818723 'Subsumes', 44818821 'Is a' in vocabulary 'Relationship'")
        + "; "
        + _METADATA_FK
    ),
}

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

# The clinical code sets the README reports coverage for.
COVERAGE_VOCABULARIES = (
    "SNOMED",
    "RxNorm",
    "LOINC",
    "CVX",
    "UCUM",
    "ICD9CM",
    "ICD9Proc",
    "CPT4",
    "HCPCS",
    "NDC",
)

PROVENANCE_COLUMNS = ["table", "key", "source", "detail"]
SAMPLE_CODE_COLUMNS = ["vocabulary_id", "concept_code", "sample"]


# --------------------------------------------------------------------------------------------
# Reading shards
# --------------------------------------------------------------------------------------------


def _file_for_table(folder: Path, table: str) -> Path | None:
    """The shard file holding ``table``: CONCEPT.csv, concept.csv or concept_seed.csv."""
    wanted = {f"{table.lower()}.csv", f"{table.lower()}_seed.csv"}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower() in wanted:
            return path
    return None


def read_table_file(path: Path, table: str) -> pl.DataFrame:
    """Read one vocabulary file (tab- or comma-delimited) into the Athena columns of ``table``.

    Every column is read as text, names are lower-cased, dates become YYYYMMDD, empty strings
    become null; columns the file lacks are added as null.
    """
    with path.open(encoding="utf-8") as fh:
        header = fh.readline()
    tabbed = "\t" in header
    frame = pl.read_csv(
        path,
        separator="\t" if tabbed else ",",
        quote_char=None if tabbed else '"',
        infer_schema=False,
    )
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    columns = TABLE_COLUMNS[table]
    exprs = []
    for name in columns:
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        col = pl.col(name).str.strip_chars()
        col = pl.when(col == "").then(None).otherwise(col)
        if name in DATE_COLUMNS:
            # YYYY-MM-DD (shards) or YYYYMMDD (Athena) -> YYYYMMDD, vectorised for full downloads.
            col = col.str.replace(r"^(\d{4})-(\d{2})-(\d{2}).*$", "${1}${2}${3}")
        exprs.append(col.alias(name))
    out = frame.select(exprs)
    for name in DATE_COLUMNS & set(columns):
        bad = out.filter(pl.col(name).is_not_null() & ~pl.col(name).str.contains(r"^\d{8}$"))
        if bad.height:
            raise ValueError(f"{path.name}: unrecognised {name} {bad[name][0]!r}")
    return out.with_columns([pl.col(c).cast(pl.Int64) for c in columns if c in INT_COLUMNS])


def empty_table(table: str) -> pl.DataFrame:
    return pl.DataFrame(
        {c: pl.Series(c, [], dtype=pl.Int64 if c in INT_COLUMNS else pl.String) for c in TABLE_COLUMNS[table]}
    )


@dataclass
class Shards:
    """All shard tables, stacked in precedence order, with a ``_source`` column (shard name)."""

    order: list[str]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def get(self, table: str) -> pl.DataFrame:
        return self.tables[table]


def load_shards(shards_dir: Path, shard_order: Sequence[str] | None = None) -> Shards:
    """Load every shard folder under ``shards_dir``; known names first, others alphabetically."""
    folders = sorted(p.name for p in shards_dir.iterdir() if p.is_dir())
    preferred = list(shard_order) if shard_order is not None else list(DEFAULT_SHARD_ORDER)
    order = [n for n in preferred if n in folders] + [n for n in folders if n not in preferred]
    if not order:
        raise FileNotFoundError(f"no shard folders under {shards_dir}")
    metadata_order = [n for n in DEFAULT_METADATA_ORDER if n in order] + [
        n for n in order if n not in DEFAULT_METADATA_ORDER
    ]
    shards = Shards(order=order)
    for table in TABLE_COLUMNS:
        parts = []
        for rank, name in enumerate(metadata_order if table in METADATA_TABLES else order):
            path = _file_for_table(shards_dir / name, table)
            if path is None:
                continue
            frame = read_table_file(path, table)
            parts.append(frame.with_columns(pl.lit(name).alias("_source"), pl.lit(rank).alias("_rank")))
        if parts:
            stacked = pl.concat(parts, how="vertical")
        else:
            stacked = empty_table(table).with_columns(
                pl.lit(None, dtype=pl.String).alias("_source"), pl.lit(0).alias("_rank")
            )
        shards.tables[table] = (
            stacked.sort("_rank", maintain_order=True)
            .unique(subset=TABLE_KEYS[table], keep="first", maintain_order=True)
            .drop("_rank")
        )
    return shards


def shard_versions(shards_dir: Path, shards: Shards) -> dict[str, str]:
    """The 'None' vocabulary_version of each shard (its vocabulary release)."""
    versions: dict[str, str] = {}
    for name in shards.order:
        path = _file_for_table(shards_dir / name, "VOCABULARY")
        if path is None:
            continue
        frame = read_table_file(path, "VOCABULARY").filter(pl.col("vocabulary_id") == "None")
        if frame.height:
            versions[name] = str(frame["vocabulary_version"][0]).rstrip("*")
    return versions


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


# --------------------------------------------------------------------------------------------
# Curated additions
# --------------------------------------------------------------------------------------------


@dataclass
class Additions:
    concepts: pl.DataFrame  # CONCEPT columns + source + unconfirmed
    ancestors: pl.DataFrame  # CONCEPT_ANCESTOR columns + source
    stcm: pl.DataFrame  # SOURCE_TO_CONCEPT_MAP columns + rationale
    keep_codes: pl.DataFrame  # vocabulary_id, concept_code, sample
    gaps: pl.DataFrame  # item, what, why, etl_fallback


def _read_curated(path: Path, table: str, extra: Sequence[str]) -> pl.DataFrame:
    if not path.exists():
        return empty_table(table).with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in extra])
    core = read_table_file(path, table)
    raw = pl.read_csv(path, infer_schema=False)
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    return core.with_columns(
        [
            (raw[c] if c in raw.columns else pl.Series(c, [None] * raw.height, dtype=pl.String)).alias(c)
            for c in extra
        ]
    )


def load_additions(additions_dir: Path) -> Additions:
    additions_dir = Path(additions_dir)
    keep_path = additions_dir / "keep_codes.csv"
    gaps_path = additions_dir / "gaps.csv"
    return Additions(
        concepts=_read_curated(additions_dir / "concepts.csv", "CONCEPT", ["source", "unconfirmed"]),
        ancestors=_read_curated(additions_dir / "concept_ancestor.csv", "CONCEPT_ANCESTOR", ["source"]),
        stcm=_read_curated(
            additions_dir / "source_to_concept_map.csv", "SOURCE_TO_CONCEPT_MAP", ["rationale"]
        ),
        keep_codes=read_code_list(keep_path)
        if keep_path.exists()
        else pl.DataFrame(schema={c: pl.String for c in SAMPLE_CODE_COLUMNS}),
        gaps=pl.read_csv(gaps_path, infer_schema=False)
        if gaps_path.exists()
        else pl.DataFrame(schema={c: pl.String for c in ["item", "what", "why", "etl_fallback"]}),
    )


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    out_dir: Path
    row_counts: dict[str, int]
    coverage: pl.DataFrame
    unmatched_sample_codes: pl.DataFrame
    warnings: list[str]


def _ids(frame: pl.DataFrame, column: str = "concept_id") -> set[int]:
    return set(frame[column].drop_nulls().to_list())


def select_concepts(
    shards: Shards, additions: Additions, wanted_codes: pl.DataFrame, warnings: list[str]
) -> tuple[pl.DataFrame, dict[int, str]]:
    """The kept CONCEPT rows (shard rows first, then curated rows) and, per concept id, why it
    was kept."""
    shard_concepts = shards.get("CONCEPT")
    shard_ids = _ids(shard_concepts)
    curated = additions.concepts
    duplicate = _ids(curated) & shard_ids
    if duplicate:
        warnings.append(f"curated concepts already in a shard, shard row kept: {sorted(duplicate)}")
        curated = curated.filter(~pl.col("concept_id").is_in(sorted(duplicate)))
    universe = pl.concat(
        [
            shard_concepts.select([*TABLE_COLUMNS["CONCEPT"], "_source"]),
            curated.select([*TABLE_COLUMNS["CONCEPT"], pl.lit("curated").alias("_source")]),
        ]
    )
    universe_ids = _ids(universe)
    reason: dict[int, str] = {}

    def add(ids: Iterable[int], why: str) -> set[int]:
        fresh = {int(i) for i in ids if i is not None and int(i) in universe_ids and int(i) not in reason}
        for concept_id in fresh:
            reason[concept_id] = why
        return fresh

    codes = wanted_codes.select("vocabulary_id", "concept_code").unique()
    by_code = universe.join(codes, on=["vocabulary_id", "concept_code"], how="inner")
    add(by_code["concept_id"].to_list(), "sample or curated code list")
    add(
        universe.filter(pl.col("vocabulary_id").is_in(sorted(WHOLE_VOCABULARIES)))["concept_id"].to_list(),
        "whole vocabulary",
    )
    add(curated["concept_id"].to_list(), "curated addition")
    stcm_targets = _ids(additions.stcm, "target_concept_id")
    missing_targets = stcm_targets - universe_ids
    if missing_targets:
        raise ValueError(
            f"SOURCE_TO_CONCEPT_MAP targets not in any shard or curated concept: {sorted(missing_targets)}"
        )
    add(stcm_targets, "SOURCE_TO_CONCEPT_MAP target")

    relationships = shards.get("CONCEPT_RELATIONSHIP").filter(
        pl.col("relationship_id").is_in(CLOSURE_RELATIONSHIPS)
    )
    ancestors = pl.concat(
        [
            shards.get("CONCEPT_ANCESTOR").drop("_source"),
            additions.ancestors.select(TABLE_COLUMNS["CONCEPT_ANCESTOR"]),
        ]
    )
    ingredient_ids = _ids(universe.filter(pl.col("concept_class_id") == "Ingredient"))
    drug_ids = _ids(universe.filter(pl.col("domain_id") == "Drug"))
    while True:
        kept = set(reason)
        targets = relationships.filter(pl.col("concept_id_1").is_in(sorted(kept)))["concept_id_2"].to_list()
        fresh = add(targets, "target of a kept concept's mapping")
        kept_drugs = sorted(kept & drug_ids)
        ings = ancestors.filter(
            pl.col("descendant_concept_id").is_in(kept_drugs)
            & pl.col("ancestor_concept_id").is_in(sorted(ingredient_ids))
        )["ancestor_concept_id"].to_list()
        fresh |= add(ings, "ingredient of a kept drug")
        if not fresh:
            break
    selected = universe.filter(pl.col("concept_id").is_in(sorted(reason))).sort("concept_id")
    return selected, reason


def concept_relationships(shards: Shards, kept: set[int]) -> pl.DataFrame:
    """CONCEPT_RELATIONSHIP rows of the relationships the ETL uses whose two concepts are kept."""
    ids = sorted(kept)
    return (
        shards.get("CONCEPT_RELATIONSHIP")
        .filter(
            pl.col("relationship_id").is_in(sorted(KEPT_RELATIONSHIPS))
            & pl.col("concept_id_1").is_in(ids)
            & pl.col("concept_id_2").is_in(ids)
        )
        .sort(["concept_id_1", "relationship_id", "concept_id_2"])
    )


# Athena's conventions for the rows no shard carries for every concept (rows added with this
# _source; PROVENANCE.csv cites the convention): a standard concept maps to itself ('Maps to' and
# 'Mapped from' to itself), and a standard or classification concept is its own ancestor at level 0,
# so descendant queries (ancestor = X) find the records coded with X itself.
CONVENTION_SOURCE = "Athena convention"
CONVENTION_DETAIL = {
    "CONCEPT_RELATIONSHIP": "rows added: every standard concept 'Maps to' and 'Mapped from' itself "
    "(OMOP CDM v5.4 documentation, CONCEPT_RELATIONSHIP; Book of OHDSI, ch. 5 'Mapping')",
    "CONCEPT_ANCESTOR": "rows added: every standard and classification concept is its own ancestor, "
    "min and max levels 0 (OMOP CDM v5.4 documentation, CONCEPT_ANCESTOR)",
}


def with_self_maps_to(relationships: pl.DataFrame, concepts: pl.DataFrame) -> pl.DataFrame:
    """``relationships`` plus the self 'Maps to' / 'Mapped from' rows of standard concepts lacking them."""
    standard = concepts.filter(pl.col("standard_concept") == "S").select(
        pl.col("concept_id").alias("concept_id_1"),
        pl.col("concept_id").alias("concept_id_2"),
        "valid_start_date",
    )
    added = pl.concat(
        [standard.with_columns(pl.lit(rel).alias("relationship_id")) for rel in ("Maps to", "Mapped from")]
    ).with_columns(
        pl.lit("20991231").alias("valid_end_date"),
        pl.lit(None, dtype=pl.String).alias("invalid_reason"),
        pl.lit(CONVENTION_SOURCE).alias("_source"),
    )
    return _add_missing(
        relationships, added, "CONCEPT_RELATIONSHIP", ["concept_id_1", "relationship_id", "concept_id_2"]
    )


def with_self_ancestors(ancestors: pl.DataFrame, concepts: pl.DataFrame) -> pl.DataFrame:
    """``ancestors`` plus the level-0 self rows of standard and classification concepts lacking them."""
    added = concepts.filter(pl.col("standard_concept").is_in(["S", "C"])).select(
        pl.col("concept_id").alias("ancestor_concept_id"),
        pl.col("concept_id").alias("descendant_concept_id"),
        pl.lit(0, dtype=pl.Int64).alias("min_levels_of_separation"),
        pl.lit(0, dtype=pl.Int64).alias("max_levels_of_separation"),
        pl.lit(CONVENTION_SOURCE).alias("_source"),
    )
    return _add_missing(
        ancestors, added, "CONCEPT_ANCESTOR", ["ancestor_concept_id", "descendant_concept_id"]
    )


def _add_missing(frame: pl.DataFrame, added: pl.DataFrame, table: str, order: list[str]) -> pl.DataFrame:
    added = added.select(frame.columns).cast(dict(frame.schema))
    missing = added.join(frame, on=TABLE_KEYS[table], how="anti")
    return pl.concat([frame, missing]).sort(order)


def metadata_tables(
    shards: Shards,
    concepts: pl.DataFrame,
    relationships: pl.DataFrame,
    stcm: pl.DataFrame,
    versions: dict[str, str],
) -> dict[str, pl.DataFrame]:
    """VOCABULARY, CONCEPT_CLASS and RELATIONSHIP rows that the kept rows reference (plus the
    'None' row stating the bundle version), and DOMAIN whole."""
    used_vocabs = set(concepts["vocabulary_id"].to_list()) | set(stcm["source_vocabulary_id"].to_list())
    used_vocabs |= set(stcm["target_vocabulary_id"].to_list())
    vocabulary = shards.get("VOCABULARY").filter(
        pl.col("vocabulary_id").is_in(sorted(used_vocabs)) & (pl.col("vocabulary_id") != "None")
    )
    none_row = pl.DataFrame(
        {
            "vocabulary_id": ["None"],
            "vocabulary_name": ["OMOP Standardized Vocabularies"],
            "vocabulary_reference": ["OMOP generated"],
            "vocabulary_version": [bundle_version(versions)],
            "vocabulary_concept_id": [44819096],
            "_source": ["rwe_assets"],
        },
        schema_overrides={"vocabulary_concept_id": pl.Int64},
    )
    vocabulary = pl.concat([none_row, vocabulary.select(none_row.columns)]).sort("vocabulary_id")
    used_classes = set(concepts["concept_class_id"].to_list())
    concept_class = (
        shards.get("CONCEPT_CLASS")
        .filter(pl.col("concept_class_id").is_in(sorted(used_classes)))
        .sort("concept_class_id")
    )
    used_rels = set(relationships["relationship_id"].to_list())
    rel_table = shards.get("RELATIONSHIP")
    reverse = set(
        rel_table.filter(pl.col("relationship_id").is_in(sorted(used_rels)))[
            "reverse_relationship_id"
        ].to_list()
    )
    relationship = rel_table.filter(pl.col("relationship_id").is_in(sorted(used_rels | reverse))).sort(
        "relationship_id"
    )
    return {
        "VOCABULARY": vocabulary,
        "DOMAIN": shards.get("DOMAIN").sort("domain_id"),
        "CONCEPT_CLASS": concept_class,
        "RELATIONSHIP": relationship,
    }


@dataclass
class DerivedConcept:
    """A metadata concept derived from VOCABULARY/DOMAIN/CONCEPT_CLASS/RELATIONSHIP rows."""

    kind: str  # 'Vocabulary', 'Domain', 'Concept Class' or 'Relationship'
    origins: list[str]  # the table rows that state "id X is the metadata concept of Y named Z"


def _metadata_origin(table: str, row: dict[str, object], shards: Shards) -> str:
    key_col, name_col, id_col, _kind = METADATA_CONCEPT_KINDS[table]
    key = row[key_col]
    if row["_source"] in shards.order:
        return f"{row['_source']} {table} row '{key}'"
    # The builder's own 'None' row: say which shard row has the same id and name.
    same = shards.get(table).filter(
        (pl.col(key_col) == key) & (pl.col(id_col) == row[id_col]) & (pl.col(name_col) == row[name_col])
    )
    if same.height:
        return (
            f"{row['_source']} {table} row '{key}' (id and name as in the {same['_source'][0]} {table} row)"
        )
    return f"{row['_source']} {table} row '{key}'"


def metadata_concepts(
    metadata: dict[str, pl.DataFrame], concepts: pl.DataFrame, shards: Shards
) -> tuple[pl.DataFrame, dict[int, DerivedConcept]]:
    """CONCEPT rows for the *_concept_id of the metadata rows that CONCEPT lacks: a shard's own CONCEPT
    row if a shard has one, otherwise the metadata concept derived from the row (concept_name = the
    row's name, vocabulary_id = concept_class_id = its kind, METADATA_CONCEPT_ATTRIBUTES)."""
    known = _ids(concepts)
    shard_concepts = shards.get("CONCEPT")
    shard_ids = _ids(shard_concepts)
    from_shards: set[int] = set()
    derived: dict[int, DerivedConcept] = {}
    rows: list[dict[str, object]] = []
    for table, (key_col, name_col, id_col, kind) in METADATA_CONCEPT_KINDS.items():
        for r in metadata[table].sort(key_col).iter_rows(named=True):
            concept_id = r[id_col]
            if concept_id is None or int(concept_id) in known:
                continue
            concept_id = int(concept_id)
            if concept_id in shard_ids:
                from_shards.add(concept_id)
            elif concept_id in derived:
                derived[concept_id].origins.append(_metadata_origin(table, r, shards))
            elif r[name_col]:
                derived[concept_id] = DerivedConcept(kind, [_metadata_origin(table, r, shards)])
                rows.append(
                    {
                        "concept_id": concept_id,
                        "concept_name": r[name_col],
                        "vocabulary_id": kind,
                        "concept_class_id": kind,
                        **METADATA_CONCEPT_ATTRIBUTES,
                        "_source": "derived",
                    }
                )
    columns = [*TABLE_COLUMNS["CONCEPT"], "_source"]
    added = pl.concat(
        [
            shard_concepts.filter(pl.col("concept_id").is_in(sorted(from_shards))).select(columns),
            pl.DataFrame(rows, schema=concepts.select(columns).schema).select(columns),
        ]
    )
    return added.sort("concept_id"), derived


def metadata_warnings(
    metadata: dict[str, pl.DataFrame], concepts: pl.DataFrame, relationships: pl.DataFrame, stcm: pl.DataFrame
) -> list[str]:
    """Foreign keys of CONCEPT (and the map) into the metadata tables, and of the metadata tables
    into CONCEPT, that the subset cannot satisfy."""
    warnings = []
    used_vocabs = set(concepts["vocabulary_id"].to_list()) | set(stcm["source_vocabulary_id"].to_list())
    used_vocabs |= set(stcm["target_vocabulary_id"].to_list())
    checks = (
        ("vocabularies without a VOCABULARY row", used_vocabs, "VOCABULARY", "vocabulary_id"),
        ("domains without a DOMAIN row", set(concepts["domain_id"].to_list()), "DOMAIN", "domain_id"),
        (
            "concept classes without a CONCEPT_CLASS row",
            set(concepts["concept_class_id"].to_list()),
            "CONCEPT_CLASS",
            "concept_class_id",
        ),
        (
            "relationships without a RELATIONSHIP row",
            set(relationships["relationship_id"].to_list()),
            "RELATIONSHIP",
            "relationship_id",
        ),
    )
    for text, used, table, column in checks:
        missing = used - set(metadata[table][column].to_list())
        if missing:
            warnings.append(f"{text}: {sorted(missing)}")
    by_id = {r["concept_id"]: r for r in concepts.iter_rows(named=True)}
    for table, (key_col, name_col, id_col, kind) in METADATA_CONCEPT_KINDS.items():
        for r in metadata[table].sort(key_col).iter_rows(named=True):
            concept = by_id.get(r[id_col])
            where = f"{table} row '{r[key_col]}' ({id_col} {r[id_col]})"
            if concept is None:
                warnings.append(f"{where}: no CONCEPT row")
            elif (concept["domain_id"], concept["vocabulary_id"], concept["concept_name"]) != (
                "Metadata",
                kind,
                r[name_col],
            ):
                warnings.append(
                    f"{where}: CONCEPT row is '{concept['concept_name']}' in domain "
                    f"'{concept['domain_id']}', vocabulary '{concept['vocabulary_id']}'"
                )
    return warnings


def build_vocab_subset(
    shards_dir: Path | str,
    out_dir: Path | str,
    sample_dirs: Sequence[Path | str] = (),
    extra_code_lists: Sequence[Path | str] = (),
    additions_dir: Path | str = ADDITIONS_DIR,
    shard_order: Sequence[str] | None = None,
    dqd_concept_level: Path | str | None = DQD_CONCEPT_LEVEL,
    license_file: Path | str | None = None,
    command: str | None = None,
) -> BuildResult:
    """Build the vocabulary subset into ``out_dir`` and return row counts and sample coverage.

    ``sample_dirs`` are folders whose codes must be kept (Synthea CSV, FHIR NDJSON, DE-SynPUF);
    ``extra_code_lists`` are CSV files with vocabulary_id and concept_code columns to keep too.
    """
    shards_dir, out_dir = Path(shards_dir), Path(out_dir)
    warnings: list[str] = []
    shards = load_shards(shards_dir, shard_order)
    additions = load_additions(Path(additions_dir))
    sample_codes = gather_sample_codes([Path(p) for p in sample_dirs])
    code_lists = [additions.keep_codes, *(read_code_list(Path(p)) for p in extra_code_lists)]
    wanted = pl.concat([sample_codes, *code_lists], how="vertical")

    concepts, _reason = select_concepts(shards, additions, wanted, warnings)

    stcm = pl.concat([additions.stcm, catalogue_ndc_map(CATALOGUE, concepts, warnings)], how="vertical")
    targets = concepts.filter(pl.col("concept_id").is_in(_ids(stcm, "target_concept_id")))
    bad = targets.filter((pl.col("standard_concept") != "S") | pl.col("standard_concept").is_null())
    if bad.height:
        raise ValueError(f"SOURCE_TO_CONCEPT_MAP targets must be standard: {bad['concept_id'].to_list()}")
    unknown_sources = _ids(stcm, "source_concept_id") - {0} - _ids(concepts)
    if unknown_sources:
        raise ValueError(f"SOURCE_TO_CONCEPT_MAP source_concept_id not in CONCEPT: {sorted(unknown_sources)}")
    stcm = stcm.sort(["source_vocabulary_id", "source_code", "target_concept_id"])
    versions = shard_versions(shards_dir, shards)

    # The language concepts of the kept concepts' synonyms, where a shard has their CONCEPT row.
    languages = _ids(
        shards.get("CONCEPT_SYNONYM").filter(pl.col("concept_id").is_in(sorted(_ids(concepts)))),
        "language_concept_id",
    ) - _ids(concepts)
    shard_languages = shards.get("CONCEPT").filter(pl.col("concept_id").is_in(sorted(languages)))
    if shard_languages.height:
        concepts = pl.concat([concepts, shard_languages.select(concepts.columns)]).sort("concept_id")

    # The metadata tables keep what the kept rows reference, and each of their rows needs its
    # metadata concept in CONCEPT, which in turn references the 'Vocabulary', 'Domain', 'Concept
    # Class' and 'Relationship' vocabularies and classes: repeat until nothing is added.
    derived: dict[int, DerivedConcept] = {}
    while True:
        relationships = concept_relationships(shards, _ids(concepts))
        metadata = metadata_tables(shards, concepts, relationships, stcm, versions)
        added, derived_now = metadata_concepts(metadata, concepts, shards)
        if added.height == 0:
            break
        derived.update(derived_now)
        concepts = pl.concat([concepts, added]).sort("concept_id")
    kept_ids = sorted(_ids(concepts))
    warnings.extend(metadata_warnings(metadata, concepts, relationships, stcm))

    def both_kept(frame: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
        return frame.filter(pl.col(a).is_in(kept_ids) & pl.col(b).is_in(kept_ids))

    curated_anc = additions.ancestors.select(
        [*TABLE_COLUMNS["CONCEPT_ANCESTOR"], pl.lit("curated").alias("_source")]
    )
    ancestors = (
        both_kept(
            pl.concat([shards.get("CONCEPT_ANCESTOR"), curated_anc]),
            "ancestor_concept_id",
            "descendant_concept_id",
        )
        .unique(subset=TABLE_KEYS["CONCEPT_ANCESTOR"], keep="first", maintain_order=True)
        .sort(["ancestor_concept_id", "descendant_concept_id"])
    )
    relationships = with_self_maps_to(relationships, concepts)
    ancestors = with_self_ancestors(ancestors, concepts)
    # CONCEPT_SYNONYM.language_concept_id is a required foreign key to CONCEPT too: a synonym whose
    # language concept is not kept (no shard has 4180186 'English language') is left out.
    shard_synonyms = shards.get("CONCEPT_SYNONYM").filter(pl.col("concept_id").is_in(kept_ids))
    synonyms = both_kept(shard_synonyms, "concept_id", "language_concept_id").sort(
        ["concept_id", "concept_synonym_name", "language_concept_id"]
    )
    lost_languages = _ids(shard_synonyms, "language_concept_id") - set(kept_ids)
    if lost_languages:
        warnings.append(
            f"{shard_synonyms.height - synonyms.height} CONCEPT_SYNONYM rows left out: their "
            f"language_concept_id is not in CONCEPT: {sorted(lost_languages)}"
        )
    strengths = both_kept(shards.get("DRUG_STRENGTH"), "drug_concept_id", "ingredient_concept_id").sort(
        ["drug_concept_id", "ingredient_concept_id"]
    )

    tables = {
        "CONCEPT": concepts,
        "CONCEPT_RELATIONSHIP": relationships,
        "CONCEPT_ANCESTOR": ancestors,
        "VOCABULARY": metadata["VOCABULARY"],
        "DOMAIN": metadata["DOMAIN"],
        "CONCEPT_CLASS": metadata["CONCEPT_CLASS"],
        "RELATIONSHIP": metadata["RELATIONSHIP"],
        "CONCEPT_SYNONYM": synonyms,
        "DRUG_STRENGTH": strengths,
        "SOURCE_TO_CONCEPT_MAP": stcm.with_columns(pl.lit("curated").alias("_source")),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, frame in tables.items():
        write_athena_table(frame, out_dir / f"{table}.csv", table)

    provenance = build_provenance(tables, additions, dqd_concept_ids(dqd_concept_level), derived)
    provenance.write_csv(out_dir / "PROVENANCE.csv")

    coverage, unmatched = sample_coverage(sample_codes, concepts, relationships, stcm)
    drugs_with_ingredient = ingredient_coverage(sample_codes, concepts, ancestors)
    counts = {table: frame.height for table, frame in tables.items()}
    if license_file is not None:
        shutil.copyfile(license_file, out_dir / "LICENSE")
    (out_dir / "README.md").write_text(
        render_readme(
            counts=counts,
            versions=versions,
            coverage=coverage,
            unmatched=unmatched,
            drugs_with_ingredient=drugs_with_ingredient,
            additions=additions,
            command=command,
            sample_dirs=[Path(p).name for p in sample_dirs],
            out_dir=out_dir,
            derived=derived,
        ),
        encoding="utf-8",
    )
    return BuildResult(out_dir, counts, coverage, unmatched, warnings)


def bundle_version(versions: dict[str, str]) -> str:
    parts = "; ".join(f"{name} {version}" for name, version in versions.items())
    return f"rwe_assets demo subset built from {parts}" if parts else "rwe_assets demo subset"


def write_athena_table(frame: pl.DataFrame, path: Path, table: str) -> None:
    """Tab-delimited, header row, Athena column order, no quoting, empty string for null."""
    columns = TABLE_COLUMNS[table]
    out = frame.select([pl.col(c).cast(pl.String) for c in columns])
    for name in columns:
        values = out[name].drop_nulls()
        if values.str.contains("\t").any() or values.str.contains("\n").any():
            raise ValueError(f"{table}.{name} holds a tab or newline; Athena's layout cannot carry it")
    out.write_csv(path, separator="\t", quote_style="never", null_value="", line_terminator="\n")


def dqd_concept_ids(path: Path | str | None) -> set[int]:
    if path is None or not Path(path).exists():
        return set()
    frame = pl.read_csv(path, infer_schema=False)
    return {int(v) for v in frame["conceptId"].drop_nulls().to_list() if v.strip().isdigit()}


def build_provenance(
    tables: dict[str, pl.DataFrame],
    additions: Additions,
    dqd_ids: set[int],
    derived: dict[int, DerivedConcept] | None = None,
) -> pl.DataFrame:
    """One row per CONCEPT row and per curated row of any table; one summary row per shard for the
    relationship-like tables whose rows all come from shards. A derived metadata concept cites the
    table rows it comes from (source) and where the conventions are documented (detail)."""
    derived = derived or {}
    rows: list[dict[str, str]] = []
    curated_source = {
        int(r["concept_id"]): (r["source"] or "", r["unconfirmed"] or "")
        for r in additions.concepts.select("concept_id", "source", "unconfirmed").iter_rows(named=True)
    }
    for r in tables["CONCEPT"].select("concept_id", "_source").iter_rows(named=True):
        concept_id = int(r["concept_id"])
        detail: list[str] = []
        if r["_source"] == "curated":
            source, unconfirmed = curated_source[concept_id]
            if unconfirmed:
                detail.append(f"not confirmed: {unconfirmed}")
        elif r["_source"] == "derived":
            meta = derived[concept_id]
            source = "derived from " + "; ".join(meta.origins)
            detail.append(
                f"metadata concept of that row: concept_name = the row's name, domain_id 'Metadata', "
                f"vocabulary_id and concept_class_id '{meta.kind}', standard_concept NULL, concept_code "
                f"'OMOP generated', valid 19700101 to 20991231, as documented in "
                + METADATA_CONVENTION_SOURCES[meta.kind]
            )
        else:
            source = r["_source"]
        if concept_id in dqd_ids:
            detail.append("id also listed in dqd_concept_level")
        rows.append(
            {"table": "CONCEPT", "key": str(concept_id), "source": source, "detail": "; ".join(detail)}
        )
    for table in ("CONCEPT_RELATIONSHIP", "CONCEPT_ANCESTOR", "CONCEPT_SYNONYM", "DRUG_STRENGTH"):
        frame = tables[table]
        shard_rows = frame.filter(pl.col("_source") != "curated")
        for name, count in sorted(shard_rows.group_by("_source").len().iter_rows()):
            rows.append(
                {
                    "table": table,
                    "key": "*",
                    "source": name,
                    "detail": CONVENTION_DETAIL[table]
                    if name == CONVENTION_SOURCE
                    else f"{count} rows taken from the shard (both concepts kept)",
                }
            )
    anc_source = {
        (int(r["ancestor_concept_id"]), int(r["descendant_concept_id"])): r["source"] or ""
        for r in additions.ancestors.iter_rows(named=True)
    }
    for r in tables["CONCEPT_ANCESTOR"].filter(pl.col("_source") == "curated").iter_rows(named=True):
        key = (int(r["ancestor_concept_id"]), int(r["descendant_concept_id"]))
        rows.append(
            {
                "table": "CONCEPT_ANCESTOR",
                "key": f"{key[0]}|{key[1]}",
                "source": anc_source[key],
                "detail": "",
            }
        )
    for r in tables["SOURCE_TO_CONCEPT_MAP"].iter_rows(named=True):
        rows.append(
            {
                "table": "SOURCE_TO_CONCEPT_MAP",
                "key": f"{r['source_vocabulary_id']}|{r['source_code']}",
                "source": CATALOGUE_ORIGIN
                if r["source_vocabulary_id"] == "NDC"
                else "rwe_assets demo mapping (rwe_assets/lib/vocab_additions/source_to_concept_map.csv)",
                "detail": r.get("rationale") or "",
            }
        )
    for table, key in (
        ("VOCABULARY", "vocabulary_id"),
        ("DOMAIN", "domain_id"),
        ("CONCEPT_CLASS", "concept_class_id"),
        ("RELATIONSHIP", "relationship_id"),
    ):
        for r in tables[table].select(key, "_source").iter_rows(named=True):
            detail = "vocabulary_version states the bundle" if r["_source"] == "rwe_assets" else ""
            rows.append({"table": table, "key": str(r[key]), "source": r["_source"], "detail": detail})
    return pl.DataFrame(rows, schema={c: pl.String for c in PROVENANCE_COLUMNS})


def catalogue_ndc_map(catalogue: Path, concepts: pl.DataFrame, warnings: list[str]) -> pl.DataFrame:
    """DEMO SOURCE_TO_CONCEPT_MAP rows for the generator's synthetic NDCs: each NDC of the catalogue's
    drugs maps to the standard RxNorm concept of the drug it stands for. A drug whose RxNorm code is not
    a kept standard concept is left out with a warning."""
    import yaml  # only the builder reads the catalogue

    drugs = yaml.safe_load(catalogue.read_text(encoding="utf-8"))["drugs"]
    rxnorm = concepts.filter((pl.col("vocabulary_id") == "RxNorm") & (pl.col("standard_concept") == "S"))
    ids = dict(zip(rxnorm["concept_code"].to_list(), rxnorm["concept_id"].to_list(), strict=True))
    missing = sorted(d["rxnorm"] for d in drugs if d["rxnorm"] not in ids)
    if missing:
        warnings.append(f"catalogue NDCs left unmapped: RxNorm {missing} not standard in the subset")
    rows = [
        {
            "source_code": d["ndc"],
            "source_concept_id": 0,
            "source_vocabulary_id": "NDC",
            "source_code_description": d["description"],
            "target_concept_id": ids[d["rxnorm"]],
            "target_vocabulary_id": "RxNorm",
            "valid_start_date": "19700101",
            "valid_end_date": "20991231",
            "invalid_reason": None,
            "rationale": f"synthetic NDC standing for RxNorm {d['rxnorm']} ({CATALOGUE_ORIGIN})",
        }
        for d in drugs
        if d["rxnorm"] in ids
    ]
    empty = empty_table("SOURCE_TO_CONCEPT_MAP").with_columns(
        pl.lit(None, dtype=pl.String).alias("rationale")
    )
    return pl.DataFrame(rows, schema=empty.schema) if rows else empty


def ingredient_coverage(
    sample_codes: pl.DataFrame, concepts: pl.DataFrame, ancestors: pl.DataFrame
) -> list[tuple[str, int, int, list[str]]]:
    """Per sample: standard RxNorm drug concepts (not ingredients) with an ingredient ancestor,
    which drug_era needs, as (sample, with ingredient, total, names of those without)."""
    ingredient_ids = sorted(_ids(concepts.filter(pl.col("concept_class_id") == "Ingredient")))
    linked = sorted(
        _ids(ancestors.filter(pl.col("ancestor_concept_id").is_in(ingredient_ids)), "descendant_concept_id")
    )
    result = []
    rx_codes = sample_codes.filter(pl.col("vocabulary_id") == "RxNorm")
    for sample in sorted(set(rx_codes["sample"].to_list())):
        codes = rx_codes.filter(pl.col("sample") == sample).select("vocabulary_id", "concept_code").unique()
        drugs = concepts.join(codes, on=["vocabulary_id", "concept_code"]).filter(
            (pl.col("standard_concept") == "S") & (pl.col("concept_class_id") != "Ingredient")
        )
        without = drugs.filter(~pl.col("concept_id").is_in(linked))
        result.append(
            (sample, drugs.height - without.height, drugs.height, sorted(without["concept_name"].to_list()))
        )
    return result


def sample_coverage(
    sample_codes: pl.DataFrame, concepts: pl.DataFrame, relationships: pl.DataFrame, stcm: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per sample and vocabulary: distinct codes, codes with a concept, codes that reach a valid
    standard concept (the concept itself, its 'Maps to' target, or a SOURCE_TO_CONCEPT_MAP row)."""
    standard = concepts.filter((pl.col("standard_concept") == "S") & pl.col("invalid_reason").is_null())
    standard_ids = _ids(standard)
    maps_to = relationships.filter(
        (pl.col("relationship_id") == "Maps to")
        & pl.col("invalid_reason").is_null()
        & pl.col("concept_id_2").is_in(sorted(standard_ids))
    )
    mapped_sources = _ids(maps_to, "concept_id_1") | standard_ids
    codes = sample_codes.join(
        concepts.select("vocabulary_id", "concept_code", "concept_id"),
        on=["vocabulary_id", "concept_code"],
        how="left",
    )
    stcm_keys = (
        stcm.filter(pl.col("target_concept_id").is_in(sorted(standard_ids)))
        .select(
            pl.col("source_vocabulary_id").alias("vocabulary_id"),
            pl.col("source_code").alias("concept_code"),
            pl.lit(True).alias("via_stcm"),
        )
        .unique()
    )
    codes = codes.join(stcm_keys, on=["vocabulary_id", "concept_code"], how="left").with_columns(
        pl.col("concept_id").is_not_null().alias("has_concept"),
        (pl.col("concept_id").is_in(sorted(mapped_sources)) | pl.col("via_stcm").fill_null(False)).alias(
            "mapped"
        ),
    )
    per_code = codes.group_by(["sample", "vocabulary_id", "concept_code"]).agg(
        pl.col("has_concept").any(), pl.col("mapped").any()
    )
    coverage = (
        per_code.group_by(["sample", "vocabulary_id"])
        .agg(
            pl.len().alias("codes"),
            pl.col("has_concept").sum().alias("with_concept"),
            pl.col("mapped").sum().alias("mapped_to_standard"),
        )
        .sort(["sample", "vocabulary_id"])
    )
    unmatched = (
        per_code.filter(~pl.col("mapped"))
        .select("sample", "vocabulary_id", "concept_code")
        .sort(["sample", "vocabulary_id", "concept_code"])
    )
    return coverage, unmatched


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def render_readme(
    *,
    counts: dict[str, int],
    versions: dict[str, str],
    coverage: pl.DataFrame,
    unmatched: pl.DataFrame,
    drugs_with_ingredient: list[tuple[str, int, int, list[str]]],
    additions: Additions,
    command: str | None,
    sample_dirs: Sequence[str],
    out_dir: Path,
    derived: dict[int, DerivedConcept] | None = None,
) -> str:
    derived = derived or {}
    kinds = [kind for *_cols, kind in METADATA_CONCEPT_KINDS.values()]
    derived_counts = ", ".join(
        f"{sum(1 for d in derived.values() if d.kind == kind)} '{kind}'" for kind in kinds
    )
    sizes = {
        table: (out_dir / f"{table}.csv").stat().st_size
        for table in counts
        if (out_dir / f"{table}.csv").exists()
    }
    count_rows = [(f"{t}.csv", f"{counts[t]:,}", f"{sizes.get(t, 0):,}") for t in TABLE_COLUMNS]
    version_rows = [(name, version) for name, version in versions.items()]
    cov_rows = [
        (r["sample"], r["vocabulary_id"], r["codes"], r["with_concept"], r["mapped_to_standard"])
        for r in coverage.iter_rows(named=True)
    ]
    unmatched_text = ", ".join(
        f"{r['vocabulary_id']} {r['concept_code']} ({r['sample']})" for r in unmatched.iter_rows(named=True)
    )
    ingredient_rows = [
        (sample, f"{linked} of {total}", ", ".join(names) or "-")
        for sample, linked, total, names in drugs_with_ingredient
    ]
    gap_rows = [
        (r["item"], r["what"], r["why"], r["etl_fallback"]) for r in additions.gaps.iter_rows(named=True)
    ]
    unconfirmed_rows = [
        (r["concept_id"], r["concept_name"], r["unconfirmed"])
        for r in additions.concepts.filter(
            pl.col("unconfirmed").is_not_null() & (pl.col("unconfirmed") != "")
        ).iter_rows(named=True)
    ]
    build_command = (
        command or "python -m rwe_assets.lib.vocab_subset --shards <DIR> --out vocab --samples <DIR> ..."
    )
    return f"""# Bundled OMOP vocabulary subset (demo)

A small OMOP standardized vocabulary in Athena's layout, so that the demo and the tests map codes
without a full Athena download. Files are tab-delimited with a header row, Athena's column names
and order, and dates as YYYYMMDD, exactly like an Athena download: a real deployment points the
project at an Athena download folder instead of this one.

**This is not a complete vocabulary.** It holds the concepts that the bundled samples (Synthea
CSV, Synthea FHIR, CMS DE-SynPUF) and the CDM itself use, the relationships among them that the
ETL needs, and a DEMO source-to-concept map. Do not use it for real data.

## Files

{_markdown_table(("file", "rows", "bytes"), count_rows)}

`PROVENANCE.csv` says where the facts of every row came from (`table`, `key`, `source`, `detail`):
every CONCEPT row has one row (a shard name; `OMOP documentation: ...` naming the public source
that confirms the id and its attributes; or `derived from ...` naming the metadata-table rows a
metadata concept comes from, see below; `detail` lists the attributes that no source confirmed, the
documentation of derived rows, and whether the id is also in the Data Quality Dashboard
concept-level list); rows of the other
tables that come from shards are summarised per shard; every curated row has its own row.

## How it was built

From three partial shards of OHDSI vocabulary tables (not in the repository):

{_markdown_table(("shard", "vocabulary release ('None' row)"), version_rows)}

and the curated data in `rwe_assets/lib/vocab_additions/` (`concepts.csv`: concepts no shard has,
each with its sources; `concept_ancestor.csv`; `keep_codes.csv`; `source_to_concept_map.csv`;
`gaps.csv`). Command (run from the repository root):

```
{build_command}
```

Rules: a concept in several shards comes from the first shard listed above. Kept concepts are the
codes of the sample folders ({", ".join(sample_dirs) or "none"}), the codes of `keep_codes.csv`, whole
structural vocabularies ({", ".join(sorted(WHOLE_VOCABULARIES))}), the curated concepts, and then,
until nothing changes, the targets of 'Maps to', 'Maps to value', 'Concept replaced by' and
'RxNorm has ing' of kept concepts, the ingredients of kept drugs (CONCEPT_ANCESTOR) and the targets
of the demo map. CONCEPT_RELATIONSHIP keeps {", ".join(sorted(KEPT_RELATIONSHIPS))} rows whose two
concepts are kept; CONCEPT_ANCESTOR, CONCEPT_SYNONYM (concept and language concept) and DRUG_STRENGTH
keep rows whose concepts are kept; the language concepts of the kept concepts' synonyms are kept when
a shard has them. VOCABULARY, CONCEPT_CLASS and RELATIONSHIP keep the rows that kept rows reference;
DOMAIN is kept whole. The 'None' row of VOCABULARY states the bundle version.

## Metadata concepts

Every VOCABULARY, DOMAIN, CONCEPT_CLASS and RELATIONSHIP row points (`*_concept_id`) to a metadata
concept of its own, which the shards' CONCEPT tables lack. The builder derives each from the row that
states it ("id X is the metadata concept of vocabulary Y named Z"): concept_id = the row's
`*_concept_id`, concept_name = its name (`vocabulary_name`, `domain_name`, `concept_class_name`,
`relationship_name`), domain_id 'Metadata', vocabulary_id and concept_class_id 'Vocabulary', 'Domain',
'Concept Class' or 'Relationship', standard_concept empty, concept_code 'OMOP generated', valid
19700101 to 20991231: the attributes OHDSI's vocabulary scripts give these concepts
(OHDSI/Vocabulary-v5.0 `working/packages/vocabulary_pack/AddNewVocabulary.sql` and manual changes; an
OMOP CDM v5 test database dump with Athena rows). `PROVENANCE.csv` cites, for every derived row, the
shard row it comes from and these sources. A shard's own CONCEPT row for such an id would be taken
instead. The metadata concepts belong to the 'Vocabulary', 'Domain', 'Concept Class' and
'Relationship' vocabularies and classes and the 'Metadata' domain, whose rows (and metadata concepts)
come from the shards in the same way, until nothing is missing. Derived: {derived_counts}.
Names follow the rows, as the scripts create them; Athena may word a few differently where a concept
was renamed later (e.g. 44818977 in OHDSI/Vocabulary-v5.0 `working/manual_changes_21-Mar-2015.sql`).

## Coverage of the samples

Distinct codes per sample and vocabulary; "mapped" means the code reaches a valid standard concept
(it is one, it has a 'Maps to' to one, or a SOURCE_TO_CONCEPT_MAP row maps it). ICD-9-CM codes are
counted in Athena's dotted form (SynPUF writes them without the dot).

{_markdown_table(("sample", "vocabulary", "codes", "with concept", "mapped"), cov_rows)}

Codes that stay unmapped (the ETL writes concept 0 and keeps the source value): {unmatched_text or "none"}.

Drug era needs an ingredient ancestor (CONCEPT_ANCESTOR) for every standard drug concept:

{_markdown_table(("sample", "drug concepts with an ingredient ancestor", "without one"), ingredient_rows)}

## DEMO source-to-concept map

`SOURCE_TO_CONCEPT_MAP.csv` maps ICD-10-CM codes (a curated list of common diagnoses) and the
ICD-9-CM codes of the SynPUF sample to SNOMED standard concepts that are in this subset. It is a
**demonstration mapping** written for this project, not OHDSI's: where the subset lacks Athena's
exact target, the row points to a broader concept (the reason is in `PROVENANCE.csv`), and all
rows carry `source_concept_id` 0 because no shard has ICD, HCPCS, CPT-4 or NDC source concepts.
Codes without a row (HCPCS, CPT-4, NDC, ICD-9 procedures and most other claims codes) map to 0.

## Gaps

What could not be confirmed from a shard or a public source is not in the subset; the ETL uses
the fallback given here.

{_markdown_table(("item", "what", "why", "ETL fallback"), gap_rows)}

Curated concepts with attributes that no source confirmed (kept because their id and name are
confirmed; see `PROVENANCE.csv`):

{_markdown_table(("concept_id", "name", "not confirmed"), unconfirmed_rows)}

## License

The shard tables come from OHDSI repositories under the Apache License 2.0 (OHDSI/EunomiaDatasets,
OHDSI/dbt-synthea; see `LICENSE`). The vocabulary content itself is OHDSI Standardized Vocabulary
content distributed under the Athena terms of use; some source vocabularies (for example CPT-4)
need their own licence for real use. The curated rows and the demo map are part of rwe_assets
(Apache 2.0).

Generated by `rwe_assets.lib.vocab_subset`; rebuild with the command above rather than editing
these files by hand.
"""


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rwe_assets.lib.vocab_subset",
        description="Build the bundled OMOP vocabulary subset from partial vocabulary shards.",
    )
    parser.add_argument("--shards", required=True, type=Path, help="folder holding one sub-folder per shard")
    parser.add_argument("--out", required=True, type=Path, help="output folder (e.g. vocab)")
    parser.add_argument(
        "--samples",
        action="append",
        default=[],
        type=Path,
        help="sample folder whose codes to keep (repeatable)",
    )
    parser.add_argument(
        "--codes",
        action="append",
        default=[],
        type=Path,
        help="CSV of vocabulary_id,concept_code to keep (repeatable)",
    )
    parser.add_argument("--additions", type=Path, default=ADDITIONS_DIR, help="curated additions folder")
    parser.add_argument("--license", type=Path, default=None, help="licence file to copy as OUT/LICENSE")
    args = parser.parse_args(argv)
    command = "python -m rwe_assets.lib.vocab_subset " + " ".join(
        [f"--shards {args.shards}", f"--out {args.out}"]
        + [f"--samples {p}" for p in args.samples]
        + [f"--codes {p}" for p in args.codes]
        + ([f"--license {args.license}"] if args.license else [])
    )
    result = build_vocab_subset(
        args.shards,
        args.out,
        sample_dirs=args.samples,
        extra_code_lists=args.codes,
        additions_dir=args.additions,
        license_file=args.license,
        command=command,
    )
    for table, count in result.row_counts.items():
        print(f"{table}: {count} rows")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.coverage)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
