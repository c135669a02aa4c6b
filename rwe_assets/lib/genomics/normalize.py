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


# Pseudo-autosomal regions (1-based, inclusive), per build: Genome Reference Consortium, "Human
# Genome Overview" assembly pages for GRCh37 and GRCh38 (https://www.ncbi.nlm.nih.gov/grc/human),
# the PAR locations listed there. Inside them chrX/chrY are diploid in males.
PSEUDOAUTOSOMAL = {
    "GRCh37": {
        "X": ((60001, 2699520), (154931044, 155260560)),
        "Y": ((10001, 2649520), (59034050, 59363566)),
    },
    "GRCh38": {
        "X": ((10001, 2781479), (155701383, 156030895)),
        "Y": ((10001, 2781479), (56887903, 57217415)),
    },
}
_SEX_OR_MITO = {"X": "X", "Y": "Y", "M": "M", "MT": "M"}


def haploid_chromosome(chrom: str) -> str | None:
    """X, Y or M for the sex chromosomes and the mitochondrion however spelled (chrX, X, chrM, MT)."""
    name = chrom[3:] if chrom[:3].lower() == "chr" else chrom
    return _SEX_OR_MITO.get(name.upper())


def in_pseudoautosomal(chrom: str, pos: int, build: str | None) -> bool | None:
    """Whether chrX/chrY `pos` lies in a PAR of `build`; with no build, the answer both GRCh builds
    give, None when they differ (or for a build without PAR coordinates here)."""
    name = haploid_chromosome(chrom)
    if name not in ("X", "Y"):
        return False
    builds = [build] if build else list(PSEUDOAUTOSOMAL)
    answers = {
        any(start <= pos <= end for start, end in PSEUDOAUTOSOMAL[b][name]) if b in PSEUDOAUTOSOMAL else None
        for b in builds
    }
    return answers.pop() if len(answers) == 1 else None


def zygosity(
    genotype: str, alt_index: int, chrom: str | None = None, pos: int | None = None, build: str | None = None
) -> str | None:
    """For the call of ALT allele `alt_index`: hom_alt (every allele is this ALT), half_call (others
    not called, e.g. ./1), het (0/1, 1/2); a one-allele genotype is hemizygous on chrM and on chrX/Y
    outside the pseudo-autosomal regions of `build`, else None (haploid where the genome is diploid,
    or a PAR that cannot be told). Without `chrom` a one-allele genotype is hemizygous (the caller
    did not say where: the old rule, kept for callers not yet passing chrom and pos)."""
    alleles, _ = parse_genotype(genotype)
    if len(alleles) == 1:
        if chrom is None:
            return HEMIZYGOUS
        name = haploid_chromosome(chrom)
        if name == "M" or (name and pos is not None and in_pseudoautosomal(chrom, pos, build) is False):
            return HEMIZYGOUS
        return None
    if all(a == alt_index for a in alleles):
        return HOM_ALT
    if any(a is None for a in alleles):
        return HALF_CALL
    return HET
