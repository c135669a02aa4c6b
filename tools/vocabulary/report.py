"""What the builder writes beside the tables: PROVENANCE.csv (where every row's facts came from, with
sources a reader can open) and README.md (how the subset was built, sample coverage, gaps)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from tools.vocabulary.athena import CATALOGUE_ORIGIN, TABLE_COLUMNS
from tools.vocabulary.select import (
    CONVENTION_DETAIL,
    CONVENTION_SOURCE,
    KEPT_RELATIONSHIPS,
    METADATA_CONCEPT_KINDS,
    WHOLE_VOCABULARIES,
    Additions,
    DerivedConcept,
    ids_of,
)

_METADATA_DUMP = (
    "Athena concept pages of such rows (https://athena.ohdsi.org/search-terms/terms/<concept_id>), "
    "e.g. {examples}, all with domain 'Metadata', standard_concept NULL, concept_code 'OMOP generated', "
    "1970-01-01 to 2099-12-31"
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
        "OMOP documentation: OHDSI/Vocabulary-v5.0 manual change adding the Plan, Sponsor, Payer and "
        "Plan Stop Reason domains (https://github.com/OHDSI/Vocabulary-v5.0, file not recorded: concept (id, "
        "domain_name, 'Metadata', 'Domain', 'Domain', NULL, 'OMOP generated', 19700101, 20991231, NULL) and "
        "the DOMAIN row pointing to it); "
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
        "change adding the PPI relationships (https://github.com/OHDSI/Vocabulary-v5.0, file not recorded: "
        "concept (id, relationship_name, 'Metadata', 'Relationship', 'Relationship', NULL, 'OMOP generated', "
        "19700101, 20991231, NULL) and the RELATIONSHIP row pointing to it); "
        + _METADATA_DUMP.format(examples="44818723 'Subsumes', 44818821 'Is a' in vocabulary 'Relationship'")
        + "; "
        + _METADATA_FK
    ),
}

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
                else "rwe_assets demo mapping (tools/vocabulary/additions/source_to_concept_map.csv)",
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


def ingredient_coverage(
    sample_codes: pl.DataFrame, concepts: pl.DataFrame, ancestors: pl.DataFrame
) -> list[tuple[str, int, int, list[str]]]:
    """Per sample: standard RxNorm drug concepts (not ingredients) with an ingredient ancestor,
    which drug_era needs, as (sample, with ingredient, total, names of those without)."""
    ingredient_ids = sorted(ids_of(concepts.filter(pl.col("concept_class_id") == "Ingredient")))
    linked = sorted(
        ids_of(ancestors.filter(pl.col("ancestor_concept_id").is_in(ingredient_ids)), "descendant_concept_id")
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
    standard_ids = ids_of(standard)
    maps_to = relationships.filter(
        (pl.col("relationship_id") == "Maps to")
        & pl.col("invalid_reason").is_null()
        & pl.col("concept_id_2").is_in(sorted(standard_ids))
    )
    mapped_sources = ids_of(maps_to, "concept_id_1") | standard_ids
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
        command or "python -m tools.vocabulary.vocab_subset --shards <DIR> --out vocab --samples <DIR> ..."
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

and the curated data in `tools/vocabulary/additions/` (`concepts.csv`: concepts no shard has,
each with sources a reader can open: URLs or repository files, and the concept's Athena page where the
first curation had cited only copies in a search index nobody else can open; `concept_ancestor.csv`; `keep_codes.csv`; `source_to_concept_map.csv`;
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

Generated by `tools/vocabulary/vocab_subset.py`; rebuild with the command above rather than editing
these files by hand.
"""
