"""Genomic variant criteria of the cohort compiler (the project's extension of Circe's criteria):
variant calls by gene and HGVS c. notation, by coordinates, or anywhere on a gene."""

from __future__ import annotations

import re
from collections.abc import Mapping

from rwe_assets.lib.analytics.cohort_refusal import UnsupportedCohortConstruct, only_keys
from rwe_assets.lib.sql_text import quote_literal


def variant_events_sql(attrs: Mapping, where: str) -> str:
    """Variant calls on a gene with an HGVS c. notation (any transcript prefix), at normalized
    coordinates, or anywhere on the gene(s) (gene level); optionally only calls annotated with a
    clinical significance in `Pathogenicity`. Dated by the specimen they were called in."""
    only_keys(attrs, _VARIANT_KEYS, where)
    genes = attrs.get("Gene")
    genes = [genes] if isinstance(genes, str) else list(genes or [])
    gene_sql = f"tg.hgnc_symbol IN ({', '.join(quote_literal(str(g)) for g in genes)})"
    matches = []
    if genes and attrs.get("HgvsC"):
        pattern = "(^|:)" + re.escape(str(attrs["HgvsC"])) + "$"
        matches.append(f"({gene_sql} AND regexp_matches(vo.hgvs_c, {quote_literal(pattern)}))")
    elif genes and attrs.get("Position") is None:
        matches.append(f"({gene_sql})")
    if attrs.get("Position") is not None:
        chrom = str(attrs["Chromosome"]).removeprefix("chr")
        matches.append(
            f"(vo.reference_genome = {quote_literal(str(attrs.get('ReferenceGenome', 'GRCh38')))} "
            f"AND vo.chromosome IN ({quote_literal(chrom)}, {quote_literal('chr' + chrom)}) "
            f"AND vo.position = {int(attrs['Position'])} AND vo.reference_allele = {quote_literal(str(attrs['Ref']))} "
            f"AND vo.alternate_allele = {quote_literal(str(attrs['Alt']))})"
        )
    if not matches:
        raise UnsupportedCohortConstruct(where, "a variant criterion without a gene or coordinates")
    filters = [f"({' OR '.join(matches)})"]
    if attrs.get("Pathogenicity"):
        # ClinVar writes e.g. Pathogenic, Likely_pathogenic, Pathogenic/Likely_pathogenic; the CDM
        # keeps it with spaces; any annotation of the call may carry it
        wanted = ", ".join(quote_literal(str(p).lower().replace("_", " ")) for p in attrs["Pathogenicity"])
        filters.append(
            "EXISTS (SELECT 1 FROM cdm.variant_annotation va WHERE va.variant_occurrence_id = vo.variant_occurrence_id "
            f"AND lower(replace(va.variant_pathogeny, '_', ' ')) IN ({wanted}))"
        )
    return (
        "SELECT vo.person_id, vo.variant_occurrence_id AS domain_event_id, 0 AS concept_id, "
        "s.specimen_date AS start_date, s.specimen_date + 1 AS end_date FROM cdm.variant_occurrence vo "
        "JOIN cdm.specimen s ON s.specimen_id = vo.specimen_id "
        "LEFT JOIN cdm.target_gene tg ON tg.target_gene_id = vo.target_gene1_id "
        f"WHERE vo.person_id IS NOT NULL AND {' AND '.join(filters)}"
    )


_VARIANT_KEYS = {
    "Gene",
    "HgvsC",
    "Chromosome",
    "Position",
    "Ref",
    "Alt",
    "ReferenceGenome",
    "Pathogenicity",
    "First",
    "Gender",
}
