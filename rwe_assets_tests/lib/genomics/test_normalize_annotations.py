"""Normalization, zygosity and INFO annotations, on hand-built cases and generated ones."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from rwe_assets.lib.genomics import annotations, normalize


def test_normalize_trims_shared_suffix_then_prefix():
    assert normalize.normalize(100, "CTG", "CTGG") == (101, "T", "TG")
    assert normalize.normalize(43057062, "T", "TG") == (43057062, "T", "TG")
    assert normalize.normalize(10, "ACT", "ACTG") == (12, "T", "TG")
    assert normalize.normalize(10, "AGT", "AT") == (10, "AG", "A")  # suffix first: one base kept
    assert normalize.normalize(10, "GCA", "GTA") == (11, "C", "T")
    assert normalize.normalize(10, "A", "<DEL>") == (10, "A", "<DEL>")
    assert normalize.normalize(10, "A", "*") == (10, "A", "*")


def test_variant_type_and_zygosity():
    assert [normalize.variant_type(r, a) for r, a in [("A", "C"), ("AC", "GT"), ("T", "TG"), ("CT", "C"), ("AC", "G"), ("A", "<DEL>")]] == [
        "SNV", "MNV", "insertion", "deletion", "delins", "symbolic"
    ]  # fmt: skip
    assert normalize.zygosity("0/1", 1) == "het"
    assert normalize.zygosity("1/2", 2) == "het"
    assert normalize.zygosity("1|1", 1) == "hom_alt"
    assert normalize.zygosity("1", 1) == "hemizygous"
    assert normalize.zygosity("./1", 1) == "half_call"


DNA = st.text(alphabet="ACGT", min_size=1, max_size=6)


@given(left=DNA, ref=DNA, alt=DNA, right=DNA)
def test_normalized_allele_makes_the_same_sequence_and_cannot_be_trimmed(left, ref, alt, right):
    """Applying REF>ALT at POS and its normalized form to the same sequence gives the same result."""
    if ref == alt:
        return
    genome = left + ref + right
    pos = len(left) + 1
    norm_pos, norm_ref, norm_alt = normalize.normalize(pos, ref, alt)
    assert genome[norm_pos - 1 : norm_pos - 1 + len(norm_ref)] == norm_ref
    edited = genome[: pos - 1] + alt + genome[pos - 1 + len(ref) :]
    assert genome[: norm_pos - 1] + norm_alt + genome[norm_pos - 1 + len(norm_ref) :] == edited
    shortest = min(len(norm_ref), len(norm_alt))
    assert shortest == 1 or (norm_ref[-1] != norm_alt[-1] and norm_ref[0] != norm_alt[0])
    assert not (len(norm_ref) > 1 and len(norm_alt) > 1 and norm_ref[-1] == norm_alt[-1])


ANN = (
    "TG|frameshift_variant|HIGH|BRCA1|ENSG00000012048|transcript|NM_007294.4|protein_coding|20/23|"
    "c.5266dupC|p.Gln1756ProfsTer74|5385/7088|5266/5592|1756/1863||,"
    "TG|upstream_gene_variant|MODIFIER|NBR2|ENSG00000198496|transcript|NR_003108.2|pseudogene||||||||"
)
CSQ_FIELDS = ["Allele", "Consequence", "IMPACT", "SYMBOL", "Feature", "HGVSc", "HGVSp", "CANONICAL"]
CSQ = (
    "G|intron_variant|MODIFIER|BRCA1|ENST00000461221.5|||,"
    "G|frameshift_variant|HIGH|BRCA1|ENST00000357654.9|ENST00000357654.9:c.5266dup|ENSP00000350283.3:p.Gln1756ProfsTer74|YES"
)


def test_snpeff_ann_first_entry_of_the_allele():
    info = json.loads(json.dumps({"ANN": ANN, "CLNSIG": "Pathogenic"}))
    note = annotations.annotate(info, "T", "TG", 1, None)
    assert note == annotations.Annotation(
        "ANN", "BRCA1", "NM_007294.4", "c.5266dupC", "p.Gln1756ProfsTer74", "frameshift_variant", "Pathogenic"
    )


def test_vep_csq_prefers_the_canonical_entry_and_matches_vep_alleles():
    note = annotations.annotate({"CSQ": CSQ}, "T", "TG", 1, CSQ_FIELDS)
    assert (note.source, note.gene_symbol, note.transcript, note.hgvs_c, note.consequence) == (
        "CSQ", "BRCA1", "ENST00000357654.9", "ENST00000357654.9:c.5266dup", "frameshift_variant"
    )  # fmt: skip
    assert annotations.vep_allele("ACT", "A") == "-"


def test_simple_keys_per_allele():
    info = {
        "GENE": "F5",
        "HGVSC": "NM_000130.5:c.1601G>A,NM_000130.5:c.1601G>T",
        "CLNSIG": "Pathogenic,Uncertain_significance",
    }
    second = annotations.annotate(info, "C", "A", 2, None)
    assert (second.gene_symbol, second.transcript, second.hgvs_c, second.clinical_significance) == (
        "F5", "NM_000130.5", "NM_000130.5:c.1601G>T", "Uncertain significance"
    )  # fmt: skip
    assert annotations.annotate({}, "A", "C", 1, None) == annotations.Annotation()
