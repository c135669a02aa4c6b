"""One representation per variant, zygosity from the genotype.

Normalization without a reference FASTA (what `bcftools norm` does without -f, plus trimming):
1. Split: each ALT allele of a record is its own variant (the raw layer already has one row per
   (record, sample, ALT allele); staging takes that allele's REF/ALT and per-allele values).
2. Trim the bases REF and ALT share at the end, then at the start, keeping at least one base in
   each, and move POS right by the bases trimmed at the start. So T>TG, CT>CTG and ACT>ACTG at the
   same place all become T>TG; a parsimonious allele is left unchanged.
Not done, because it needs the reference sequence: left-shifting an indel through a repeat (an
indel written at the right end of a homopolymer keeps its position), and checking that REF matches
the genome. Symbolic alleles (<DEL>, <*:DEL>), the spanning deletion '*' and breakends are kept as
written.
"""

from __future__ import annotations

import re

_BASES = re.compile(r"^[ACGTNacgtn]+$")

SNV, MNV, INSERTION, DELETION, DELINS, SYMBOLIC = "SNV", "MNV", "insertion", "deletion", "delins", "symbolic"


def is_sequence_allele(allele: str) -> bool:
    return bool(_BASES.match(allele))


def normalize(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim shared suffix then shared prefix (keeping one base each); POS moves with the prefix."""
    if not (is_sequence_allele(ref) and is_sequence_allele(alt)) or ref.upper() == alt.upper():
        return pos, ref, alt
    ref_upper, alt_upper = ref.upper(), alt.upper()
    end = 0
    while end < min(len(ref), len(alt)) - 1 and ref_upper[-1 - end] == alt_upper[-1 - end]:
        end += 1
    ref, alt = ref[: len(ref) - end], alt[: len(alt) - end]
    ref_upper, alt_upper = ref_upper[: len(ref)], alt_upper[: len(alt)]
    start = 0
    while start < min(len(ref), len(alt)) - 1 and ref_upper[start] == alt_upper[start]:
        start += 1
    return pos + start, ref[start:], alt[start:]


def variant_type(ref: str, alt: str) -> str:
    """The kind of change of a normalized allele (Sequence Ontology-like names)."""
    if not (is_sequence_allele(ref) and is_sequence_allele(alt)):
        return SYMBOLIC
    if len(ref) == len(alt):
        return SNV if len(ref) == 1 else MNV
    if len(ref) == 1 and alt[0].upper() == ref.upper():
        return INSERTION
    if len(alt) == 1 and ref[0].upper() == alt.upper():
        return DELETION
    return DELINS


HET, HOM_ALT, HEMIZYGOUS, HALF_CALL = "het", "hom_alt", "hemizygous", "half_call"


def parse_genotype(genotype: str) -> tuple[list[int | None], bool]:
    """Alleles (None for '.') and whether the genotype is phased ('|')."""
    phased = "|" in genotype
    return [None if a == "." else int(a) for a in re.split(r"[|/]", genotype)], phased


def zygosity(genotype: str, alt_index: int) -> str:
    """For the call of ALT allele `alt_index`: hemizygous (one allele: chrX/Y in males, chrM),
    hom_alt (every allele is this ALT), half_call (others not called, e.g. ./1), else het (0/1, 1/2)."""
    alleles, _ = parse_genotype(genotype)
    if len(alleles) == 1:
        return HEMIZYGOUS
    if all(a == alt_index for a in alleles):
        return HOM_ALT
    if any(a is None for a in alleles):
        return HALF_CALL
    return HET
