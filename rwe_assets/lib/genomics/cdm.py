"""Genomics into the CDM: SPECIMEN and PROCEDURE_OCCURRENCE (OMOP v5.4) for every tested sample, and
the G-CDM tables GENOMIC_TEST, TARGET_GENE, VARIANT_OCCURRENCE, VARIANT_ANNOTATION, all on the
linked person_id.

`build_genomics_cdm(con, lake_dir, person_map)` reads staging/specimen and staging/variant from the
lake, creates the tables that do not exist yet (DDL generated from the OMOP spec and from the project's
G-CDM spec, rwe_assets/lib/spec/gcdm_*.csv) and replaces its own rows, so running it twice on the
same database gives the same result. Ids come from the persistent id maps (lib/id_map.py): specimen,
procedure_occurrence (shared with the rest of the CDM, keys prefixed 'genomic_test|'), genomic_test,
target_gene, variant_occurrence, variant_annotation.

Rules: a specimen is one (batch, VCF file, sample name) of the manifest (staging.specimen_key), so
sample names reused by other files or batches are other specimens; a specimen whose manifest person
is not in the person map is left out (counted as unlinked). reference_genome is the staged build: the
VCF header's, else the manifest's GENOME_BUILD (normalized); one genomic_test per test name and build.
Concepts are looked up by SNOMED code in the loaded vocabulary; a code the vocabulary does not hold
gives concept 0 with the source value kept (the bundled demo vocabulary holds none of them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from rwe_assets import constants
from rwe_assets.lib import lake
from rwe_assets.lib.cdm_spec import CDM_SCHEMA, CdmSpec, cdm_ddl, create_table_sql, load_cdm_spec
from rwe_assets.lib.genomics.staging import SOURCE_SYSTEM, SPECIMEN, VARIANT
from rwe_assets.lib.id_map import assign_ids

GCDM_TABLES = ("genomic_test", "target_gene", "variant_occurrence", "variant_annotation")
# SNOMED CT codes, looked up in the loaded vocabulary (never written as concept ids).
SNOMED_GENETIC_TEST = "405824009"  # Genetic test (procedure)
SNOMED_SPECIMEN = {"blood": "119297000", "saliva": "119342007"}  # Blood / Saliva specimen
_SPEC_DIR = resources.files("rwe_assets.lib") / "spec"
# The procedure id map is shared with the clinical procedures: ours are the keys with this prefix.
_OUR_PROCEDURES = "SELECT id FROM ids_procedure_occurrence WHERE natural_key LIKE 'genomic_test|%'"


@functools.cache
def gcdm_spec() -> CdmSpec:
    """The OMOP v5.4 spec plus the project's G-CDM v2.0 tables."""
    return load_cdm_spec(
        extra_field_csvs=[Path(str(_SPEC_DIR / "gcdm_field_level.csv"))],
        extra_table_csvs=[Path(str(_SPEC_DIR / "gcdm_table_level.csv"))],
    )


def gcdm_ddl(schema: str = CDM_SCHEMA) -> list[str]:
    return cdm_ddl(schema, GCDM_TABLES, spec=gcdm_spec())


@dataclass(frozen=True)
class GenomicsCdmReport:
    specimens: int
    procedures: int
    genomic_tests: int
    target_genes: int
    variant_occurrences: int
    variant_annotations: int
    unlinked_specimens: int
    unlinked_variants: int


def build_genomics_cdm(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    person_map: str,
    schema: str = CDM_SCHEMA,
    registered: bool = False,
) -> GenomicsCdmReport:
    """Fill the genomics tables of `schema`. `person_map` names a table or view in `con` with columns
    source_system, source_person_id, person_id (the linkage crosswalk contract). `registered`: the
    caller registered the staging tables already (`register_staging`)."""
    if not registered and not register_staging(con, lake_dir):
        raise FileNotFoundError(
            "staging/specimen or staging/variant does not exist: run genomics staging first"
        )
    for statement in [create_table_sql("specimen", schema), create_table_sql("procedure_occurrence", schema)]:
        con.execute(statement)
    for statement in gcdm_ddl(schema):
        con.execute(statement)
    _linked_inputs(con, person_map)
    _assign(con, lake_dir)
    _concepts(con, schema)
    _replace_rows(con, schema)
    return _report(con, schema)


def register_staging(con: duckdb.DuckDBPyConnection, lake_dir: Path) -> bool:
    """staging/specimen and staging/variant as stg_genomics_<table> (on object storage registered Arrow,
    which a saved session cannot hold: the CDM build registers them with its other inputs, also on a
    resume); False when one does not exist."""
    return all(
        [
            lake.register_view(con, f"stg_genomics_{n}", lake.table_path(lake_dir, "staging", n))
            for n in (SPECIMEN, VARIANT)
        ]
    )


def _linked_inputs(con, person_map: str) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE g_specimen AS
        SELECT s.*, p.person_id,
               'lab|' || s.test_name || '|' || coalesce(s.genome_build, '') AS test_key
        FROM stg_genomics_specimen s
        LEFT JOIN {person_map} p ON p.source_system = '{SOURCE_SYSTEM}' AND p.source_person_id = s.source_person_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE g_variant AS
        SELECT v.*, s.person_id, s.test_key, s.test_key || '|' || v.gene_symbol AS gene_key
        FROM stg_genomics_variant v JOIN g_specimen s USING (specimen_key)
        """
    )


def _assign(con, lake_dir: Path) -> None:
    linked = "FROM g_specimen WHERE person_id IS NOT NULL"
    assign_ids(con, lake_dir, "specimen", f"SELECT specimen_key AS natural_key {linked}")
    assign_ids(
        con,
        lake_dir,
        "procedure_occurrence",
        f"SELECT 'genomic_test|' || specimen_key AS natural_key {linked}",
    )
    assign_ids(con, lake_dir, "genomic_test", f"SELECT test_key AS natural_key {linked}")
    variants = "FROM g_variant WHERE person_id IS NOT NULL"
    assign_ids(
        con, lake_dir, "target_gene", f"SELECT gene_key AS natural_key {variants} AND gene_symbol IS NOT NULL"
    )
    assign_ids(con, lake_dir, "variant_occurrence", f"SELECT call_key AS natural_key {variants}")
    annotated = f"{variants} AND (clinical_significance IS NOT NULL OR consequence IS NOT NULL)"
    assign_ids(con, lake_dir, "variant_annotation", f"SELECT call_key AS natural_key {annotated}")


def _concepts(con, schema: str) -> None:
    """g_concept(kind, concept_id): the SNOMED concepts the vocabulary holds (none: 0 later)."""
    con.execute("CREATE OR REPLACE TEMP TABLE g_concept (kind VARCHAR, concept_id INTEGER)")
    has_concept = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'concept'",
        [schema],
    ).fetchone()[0]
    if not has_concept:
        return
    for kind, code in [("genetic_test", SNOMED_GENETIC_TEST), *SNOMED_SPECIMEN.items()]:
        con.execute(
            f"""
            INSERT INTO g_concept SELECT ?, min(concept_id) FROM {schema}.concept
            WHERE vocabulary_id = 'SNOMED' AND concept_code = ? AND standard_concept = 'S'
              AND invalid_reason IS NULL HAVING count(*) > 0
            """,
            [kind, code],
        )


def _concept(kind_sql: str) -> str:
    return f"coalesce((SELECT concept_id FROM g_concept WHERE kind = {kind_sql}), {constants.NO_MATCHING_CONCEPT})"


def _replace_rows(con, schema: str) -> None:
    con.execute(f"DELETE FROM {schema}.specimen WHERE specimen_id IN (SELECT id FROM ids_specimen)")
    con.execute(
        f"DELETE FROM {schema}.procedure_occurrence WHERE procedure_occurrence_id IN ({_OUR_PROCEDURES})"
    )
    for table in GCDM_TABLES:
        con.execute(f"DELETE FROM {schema}.{table}")
    con.execute(
        f"""
        INSERT INTO {schema}.specimen BY NAME
        SELECT i.id AS specimen_id, s.person_id, {_concept("lower(s.specimen_type)")} AS specimen_concept_id,
               {constants.LAB} AS specimen_type_concept_id, s.specimen_date,
               left(s.sample_id, 50) AS specimen_source_id, left(s.specimen_type, 50) AS specimen_source_value
        FROM g_specimen s JOIN ids_specimen i ON i.natural_key = s.specimen_key
        """
    )
    con.execute(
        f"""
        INSERT INTO {schema}.procedure_occurrence BY NAME
        SELECT i.id AS procedure_occurrence_id, s.person_id, {_concept("'genetic_test'")} AS procedure_concept_id,
               s.specimen_date AS procedure_date, {constants.LAB} AS procedure_type_concept_id,
               left(s.test_name, 50) AS procedure_source_value, {constants.NO_MATCHING_CONCEPT} AS procedure_source_concept_id
        FROM g_specimen s JOIN ids_procedure_occurrence i ON i.natural_key = 'genomic_test|' || s.specimen_key
        """
    )
    _insert_gcdm(con, schema)


def _insert_gcdm(con, schema: str) -> None:
    con.execute(
        f"""
        INSERT INTO {schema}.genomic_test BY NAME
        SELECT i.id AS genomic_test_id, any_value(s.test_name) AS genomic_test_name,
               any_value(s.genome_build) AS reference_genome, '1-based' AS chromosome_coordinate
        FROM g_specimen s JOIN ids_genomic_test i ON i.natural_key = s.test_key GROUP BY i.id
        """
    )
    con.execute(
        f"""
        INSERT INTO {schema}.target_gene BY NAME
        SELECT i.id AS target_gene_id, t.id AS genomic_test_id, any_value(v.gene_symbol) AS hgnc_symbol,
               CASE WHEN count(DISTINCT v.chrom) = 1 THEN any_value(v.chrom) END AS chromosome_id
        FROM g_variant v JOIN ids_target_gene i ON i.natural_key = v.gene_key
        JOIN ids_genomic_test t ON t.natural_key = v.test_key GROUP BY i.id, t.id
        """
    )
    con.execute(
        f"""
        INSERT INTO {schema}.variant_occurrence BY NAME
        SELECT i.id AS variant_occurrence_id, p.id AS procedure_occurrence_id, sp.id AS specimen_id,
               g.id AS target_gene1_id, v.transcript AS reference_sequence, v.rs_id, v.hgvs_c, v.hgvs_p,
               v.alt_read_depth AS variant_read_depth, v.read_depth AS total_read_depth,
               v.variant_type AS sequence_alteration, v.consequence AS variant_feature, v.person_id,
               t.id AS genomic_test_id, v.chrom AS chromosome, v.pos AS position, v.ref AS reference_allele,
               v.alt AS alternate_allele, v.genome_build AS reference_genome, v.genotype, v.zygosity,
               CAST(v.phased AS INTEGER) AS is_phased, v.qual AS quality, v.filter, v.genotype_quality,
               v.call_key AS variant_source_value
        FROM g_variant v
        JOIN ids_variant_occurrence i ON i.natural_key = v.call_key
        JOIN ids_specimen sp ON sp.natural_key = v.specimen_key
        JOIN ids_procedure_occurrence p ON p.natural_key = 'genomic_test|' || v.specimen_key
        JOIN ids_genomic_test t ON t.natural_key = v.test_key
        LEFT JOIN ids_target_gene g ON g.natural_key = v.gene_key
        """
    )
    # staging written before variant_origin existed holds the lab's germline panels only
    staged = con.sql("SELECT * FROM g_variant LIMIT 0").columns
    origin = "v.variant_origin" if "variant_origin" in staged else "'Germline'"
    con.execute(
        f"""
        INSERT INTO {schema}.variant_annotation BY NAME
        SELECT a.id AS variant_annotation_id, o.id AS variant_occurrence_id,
               CASE WHEN v.clinical_significance IS NOT NULL THEN 'ClinVar' ELSE v.annotation_source END
                   AS annotation_database,
               {origin} AS variant_origin, v.clinical_significance AS variant_pathogeny,
               v.allele_frequency
        FROM g_variant v
        JOIN ids_variant_annotation a ON a.natural_key = v.call_key
        JOIN ids_variant_occurrence o ON o.natural_key = v.call_key
        """
    )


def _report(con, schema: str) -> GenomicsCdmReport:
    def count(sql: str) -> int:
        return con.execute(sql).fetchone()[0]

    return GenomicsCdmReport(
        specimens=count(
            f"SELECT count(*) FROM {schema}.specimen WHERE specimen_id IN (SELECT id FROM ids_specimen)"
        ),
        procedures=count(
            f"SELECT count(*) FROM {schema}.procedure_occurrence WHERE procedure_occurrence_id IN ({_OUR_PROCEDURES})"
        ),
        genomic_tests=count(f"SELECT count(*) FROM {schema}.genomic_test"),
        target_genes=count(f"SELECT count(*) FROM {schema}.target_gene"),
        variant_occurrences=count(f"SELECT count(*) FROM {schema}.variant_occurrence"),
        variant_annotations=count(f"SELECT count(*) FROM {schema}.variant_annotation"),
        unlinked_specimens=count("SELECT count(*) FROM g_specimen WHERE person_id IS NULL"),
        unlinked_variants=count("SELECT count(*) FROM g_variant WHERE person_id IS NULL"),
    )
