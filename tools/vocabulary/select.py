"""Which rows the subset keeps: the curated additions, the concepts kept and their closure over
'Maps to' and ingredients, relationships and ancestors, and the metadata concepts of the VOCABULARY,
DOMAIN, CONCEPT_CLASS and RELATIONSHIP rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tools.vocabulary.athena import (
    TABLE_COLUMNS,
    TABLE_KEYS,
    Shards,
    bundle_version,
    empty_table,
    read_table_file,
)
from tools.vocabulary.samples import SAMPLE_CODE_COLUMNS, read_code_list

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


def ids_of(frame: pl.DataFrame, column: str = "concept_id") -> set[int]:
    return set(frame[column].drop_nulls().to_list())


def select_concepts(
    shards: Shards, additions: Additions, wanted_codes: pl.DataFrame, warnings: list[str]
) -> tuple[pl.DataFrame, dict[int, str]]:
    """The kept CONCEPT rows (shard rows first, then curated rows) and, per concept id, why it
    was kept."""
    shard_concepts = shards.get("CONCEPT")
    shard_ids = ids_of(shard_concepts)
    curated = additions.concepts
    duplicate = ids_of(curated) & shard_ids
    if duplicate:
        warnings.append(f"curated concepts already in a shard, shard row kept: {sorted(duplicate)}")
        curated = curated.filter(~pl.col("concept_id").is_in(sorted(duplicate)))
    universe = pl.concat(
        [
            shard_concepts.select([*TABLE_COLUMNS["CONCEPT"], "_source"]),
            curated.select([*TABLE_COLUMNS["CONCEPT"], pl.lit("curated").alias("_source")]),
        ]
    )
    universe_ids = ids_of(universe)
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
    stcm_targets = ids_of(additions.stcm, "target_concept_id")
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
    ingredient_ids = ids_of(universe.filter(pl.col("concept_class_id") == "Ingredient"))
    drug_ids = ids_of(universe.filter(pl.col("domain_id") == "Drug"))
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
    known = ids_of(concepts)
    shard_concepts = shards.get("CONCEPT")
    shard_ids = ids_of(shard_concepts)
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
