"""The Athena layout of vocabulary tables: columns, keys and types per table, reading shards (folders
in the Athena or the dbt-synthea seed layout) and writing the tab-delimited files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

REPO_DIR = Path(__file__).resolve().parents[2]
ADDITIONS_DIR = Path(__file__).parent / "additions"
CATALOGUE = REPO_DIR / "rwe_assets" / "synthetic" / "catalogue" / "clinical.yaml"
CATALOGUE_ORIGIN = "rwe_assets demo mapping (rwe_assets/synthetic/catalogue/clinical.yaml)"
DQD_CONCEPT_LEVEL = REPO_DIR / "rwe_assets" / "lib" / "spec" / "dqd_v5.4" / "OMOP_CDMv5.4_Concept_Level.csv"

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


def write_athena_table(frame: pl.DataFrame, path: Path, table: str) -> None:
    """Tab-delimited, header row, Athena column order, no quoting, empty string for null."""
    columns = TABLE_COLUMNS[table]
    out = frame.select([pl.col(c).cast(pl.String) for c in columns])
    for name in columns:
        values = out[name].drop_nulls()
        if values.str.contains("\t").any() or values.str.contains("\n").any():
            raise ValueError(f"{table}.{name} holds a tab or newline; Athena's layout cannot carry it")
    out.write_csv(path, separator="\t", quote_style="never", null_value="", line_terminator="\n")


def bundle_version(versions: dict[str, str]) -> str:
    parts = "; ".join(f"{name} {version}" for name, version in versions.items())
    return f"rwe_assets demo subset built from {parts}" if parts else "rwe_assets demo subset"
