"""Build the small OMOP vocabulary the project ships in ``vocab/``.

This is a maintainer tool. It reads partial vocabulary "shards" (folders in the Athena layout, or
the OHDSI/dbt-synthea seed layout) from a path given on the command line, keeps only the concepts
the bundled samples and the CDM itself need, adds the curated rows of ``tools/vocabulary/additions/``
(each with sources a reader can open: a URL or a file of this repository), and writes the Athena
layout: tab-delimited ``CONCEPT.csv`` etc. with a header row, Athena column names and order, and
dates as YYYYMMDD. It also writes ``PROVENANCE.csv`` (where every row's facts came
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

The builder is split by job: ``athena`` (table layout, reading shards, writing files), ``samples``
(the codes the samples use), ``select`` (curated additions, the rows kept, metadata concepts),
``report`` (PROVENANCE.csv and README.md) and this module (the build and the command line).

Usage::

    python -m tools.vocabulary.vocab_subset --shards DIR --out vocab \
        --samples ../shared/data/synthea27 --samples ../shared/data/fhir_bulk_synthea13 \
        --samples ../shared/data/synpuf_sample
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tools.vocabulary.athena import (
    ADDITIONS_DIR,
    CATALOGUE,
    CATALOGUE_ORIGIN,
    DQD_CONCEPT_LEVEL,
    TABLE_COLUMNS,
    TABLE_KEYS,
    empty_table,
    load_shards,
    shard_versions,
    write_athena_table,
)
from tools.vocabulary.report import (
    METADATA_CONVENTION_SOURCES,
    PROVENANCE_COLUMNS,
    build_provenance,
    dqd_concept_ids,
    ingredient_coverage,
    render_readme,
    sample_coverage,
)
from tools.vocabulary.samples import (
    gather_sample_codes,
    hcpcs_vocabulary,
    icd9_diagnosis_dotted,
    icd9_procedure_dotted,
    read_code_list,
)
from tools.vocabulary.select import (
    KEPT_RELATIONSHIPS,
    BuildResult,
    DerivedConcept,
    concept_relationships,
    ids_of,
    load_additions,
    metadata_concepts,
    metadata_tables,
    metadata_warnings,
    select_concepts,
    with_self_ancestors,
    with_self_maps_to,
)

__all__ = [  # what the tests and maintainers use from here
    "ADDITIONS_DIR",
    "KEPT_RELATIONSHIPS",
    "METADATA_CONVENTION_SOURCES",
    "PROVENANCE_COLUMNS",
    "TABLE_COLUMNS",
    "BuildResult",
    "build_vocab_subset",
    "gather_sample_codes",
    "hcpcs_vocabulary",
    "icd9_diagnosis_dotted",
    "icd9_procedure_dotted",
    "load_additions",
    "main",
]


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
    targets = concepts.filter(pl.col("concept_id").is_in(ids_of(stcm, "target_concept_id")))
    bad = targets.filter((pl.col("standard_concept") != "S") | pl.col("standard_concept").is_null())
    if bad.height:
        raise ValueError(f"SOURCE_TO_CONCEPT_MAP targets must be standard: {bad['concept_id'].to_list()}")
    unknown_sources = ids_of(stcm, "source_concept_id") - {0} - ids_of(concepts)
    if unknown_sources:
        raise ValueError(f"SOURCE_TO_CONCEPT_MAP source_concept_id not in CONCEPT: {sorted(unknown_sources)}")
    stcm = stcm.sort(["source_vocabulary_id", "source_code", "target_concept_id"])
    versions = shard_versions(shards_dir, shards)

    # The language concepts of the kept concepts' synonyms, where a shard has their CONCEPT row.
    languages = ids_of(
        shards.get("CONCEPT_SYNONYM").filter(pl.col("concept_id").is_in(sorted(ids_of(concepts)))),
        "language_concept_id",
    ) - ids_of(concepts)
    shard_languages = shards.get("CONCEPT").filter(pl.col("concept_id").is_in(sorted(languages)))
    if shard_languages.height:
        concepts = pl.concat([concepts, shard_languages.select(concepts.columns)]).sort("concept_id")

    # The metadata tables keep what the kept rows reference, and each of their rows needs its
    # metadata concept in CONCEPT, which in turn references the 'Vocabulary', 'Domain', 'Concept
    # Class' and 'Relationship' vocabularies and classes: repeat until nothing is added.
    derived: dict[int, DerivedConcept] = {}
    while True:
        relationships = concept_relationships(shards, ids_of(concepts))
        metadata = metadata_tables(shards, concepts, relationships, stcm, versions)
        added, derived_now = metadata_concepts(metadata, concepts, shards)
        if added.height == 0:
            break
        derived.update(derived_now)
        concepts = pl.concat([concepts, added]).sort("concept_id")
    kept_ids = sorted(ids_of(concepts))
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
    lost_languages = ids_of(shard_synonyms, "language_concept_id") - set(kept_ids)
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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.vocabulary.vocab_subset",
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
    command = "python -m tools.vocabulary.vocab_subset " + " ".join(
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
