"""The VCF header as data: meta lines, contigs, INFO/FORMAT/FILTER definitions, samples, genome build.

Parsed from the header text cyvcf2 (htslib) read, line by line, so every item keeps its physical line
number. The genome build (GRCh37, GRCh38, NCBI36 or T2T-CHM13) is taken from `##reference=` or
`##assembly=`, else from the contigs' `assembly=`, else from the length of chr1/1 (it differs between
the four builds); None when nothing tells or the sources a level offers disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Common spellings of the human builds (GRC names, UCSC names, the 1000 Genomes / GATK bundle and
# bwa-kit FASTA names, T2T's names), folded to one name per build. Matched as a token inside a
# longer text (a FASTA path), so "hg19" in ".../hg19/bwa/hg19_gatk.fa" counts and "hs1" in "chs1" does not.
GRCH37, GRCH38, NCBI36, T2T_CHM13 = "GRCh37", "GRCh38", "NCBI36", "T2T-CHM13"
BUILDS = (NCBI36, GRCH37, GRCH38, T2T_CHM13)
_BUILD_SPELLINGS = {
    GRCH38: ("grch38", "hg38", "b38", "hs38dh", "hs38", "homo_sapiens_assembly38"),
    GRCH37: ("grch37", "hg19", "b37", "hs37d5", "hs37", "human_g1k_v37", "homo_sapiens_assembly19"),
    NCBI36: ("ncbi36", "ncbi_build_36", "ncbi build 36", "hg18", "b36", "human_b36"),
    T2T_CHM13: ("t2t-chm13", "t2t_chm13", "chm13v2.0", "chm13v2", "chm13v1.1", "chm13v1", "chm13", "hs1"),
}
_BUILD_ALIASES = {spelling: build for build, spellings in _BUILD_SPELLINGS.items() for spelling in spellings}
_BUILD_IN_TEXT = re.compile(
    r"(?<![a-z0-9])("
    + "|".join(re.escape(s) for s in sorted(_BUILD_ALIASES, key=len, reverse=True))
    + r")(?![0-9])",
    re.IGNORECASE,
)
# Length of chromosome 1 per build, from the assemblies' published sequence reports:
# GRCh38 (GCA_000001405.15, NC_000001.11) 248,956,422; GRCh37 (GCA_000001405.1, NC_000001.10)
# 249,250,621; NCBI36 / hg18 (NC_000001.9, UCSC hg18 chromInfo) 247,249,719; T2T-CHM13v2.0
# (GCA_009914755.4, CP068277.2) 248,387,328. Patches and decoys never change chr1's length.
CHR1_LENGTH_BUILD = {248956422: GRCH38, 249250621: GRCH37, 247249719: NCBI36, 248387328: T2T_CHM13}
_CHR1_NAMES = ("chr1", "1", "CHR1", "Chr1")
_STRUCTURED = re.compile(r"^##(\w+)=<(.*)>\s*$")
_KEY_VALUE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,]*)')
_CSQ_FORMAT = re.compile(r"Format:\s*([^\"]+)")
_EFF_FORMAT = re.compile(r"Effect\s*\((.*)\)")
CHROM_LINE_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")


def normalize_build(text: str | None) -> str | None:
    """The build (GRCh37, GRCh38, NCBI36, T2T-CHM13) a common spelling found in `text` names (a build
    name such as a manifest's GENOME_BUILD, or a FASTA path); None when `text` names none, or names
    two different builds."""
    if not text:
        return None
    found = {_BUILD_ALIASES[match.lower()] for match in _BUILD_IN_TEXT.findall(text)}
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class HeaderItem:
    """One header line: section (fileformat, reference, contig, INFO, FORMAT, FILTER, other meta)."""

    line: int
    section: str
    item_id: str | None
    number: str | None
    item_type: str | None
    description: str | None
    length: int | None
    assembly: str | None
    text: str


@dataclass
class VcfHeader:
    items: list[HeaderItem]
    samples: list[str]
    line_count: int  # physical header lines, the #CHROM line included
    contigs: dict[str, int | None] = field(default_factory=dict)
    info: dict[str, HeaderItem] = field(default_factory=dict)
    formats: dict[str, HeaderItem] = field(default_factory=dict)
    reference: str | None = None
    assembly: str | None = None  # a `##assembly=` meta line (some callers write the build there)

    @property
    def build(self) -> str | None:
        """Named by ##reference / ##assembly, else by the contigs' assembly=, else told by chr1's length."""
        named = {normalize_build(self.reference), normalize_build(self.assembly)} - {None}
        if named:
            return named.pop() if len(named) == 1 else None
        assemblies = {normalize_build(i.assembly) for i in self.items if i.section == "contig"} - {None}
        if assemblies:
            return assemblies.pop() if len(assemblies) == 1 else None
        return self.build_from_lengths

    @property
    def build_from_lengths(self) -> str | None:
        """The build whose chr1 length the header's ##contig line for chr1 (or 1) gives; else None."""
        for name in _CHR1_NAMES:
            if self.contigs.get(name):
                return CHR1_LENGTH_BUILD.get(self.contigs[name])
        return None

    @property
    def vep_fields(self) -> list[str] | None:
        """The field names of VEP's CSQ, from its INFO description ('... Format: Allele|Consequence|...')."""
        csq = self.info.get("CSQ")
        match = _CSQ_FORMAT.search(csq.description or "") if csq else None
        return [name.strip() for name in match.group(1).split("|")] if match else None

    @property
    def eff_fields(self) -> list[str] | None:
        """The names of SnpEff's legacy EFF sub-fields, from its INFO description ("Format: 'Effect (
        Effect_Impact | ... | Exon [ | ERRORS | WARNINGS ] )'"), the optional bracketed tail left out."""
        eff = self.info.get("EFF")
        match = _EFF_FORMAT.search(eff.description or "") if eff else None
        if match is None:
            return None
        names = [name.strip() for name in match.group(1).split("[", 1)[0].split("|")]
        return [name for name in names if name] or None


def parse_header(text: str) -> VcfHeader:
    """Parse header text as htslib returns it (meta lines, then the #CHROM line)."""
    lines = text.rstrip("\n").split("\n")
    items = [_item(number, line) for number, line in enumerate(lines[:-1], start=1)]
    columns = lines[-1].rstrip("\r").split("\t")
    header = VcfHeader(items=items, samples=columns[9:], line_count=len(lines))
    for item in items:
        if item.section == "contig" and item.item_id:
            header.contigs[item.item_id] = item.length
        elif item.section == "INFO" and item.item_id:
            header.info[item.item_id] = item
        elif item.section == "FORMAT" and item.item_id:
            header.formats[item.item_id] = item
        elif item.section == "reference":
            header.reference = item.text.split("=", 1)[1]
        elif item.section == "assembly" and item.item_id is None:
            header.assembly = item.text.split("=", 1)[1]
    return header


def _item(number: int, line: str) -> HeaderItem:
    line = line.rstrip("\r")
    structured = _STRUCTURED.match(line)
    if structured is None:
        key = line[2:].split("=", 1)[0] if line.startswith("##") else ""
        return HeaderItem(number, key, None, None, None, None, None, None, line)
    section, body = structured.groups()
    values = {k: v.strip('"') for k, v in _KEY_VALUE.findall(body)}
    length = values.get("length")
    return HeaderItem(
        line=number,
        section=section,
        item_id=values.get("ID"),
        number=values.get("Number"),
        item_type=values.get("Type"),
        description=values.get("Description"),
        length=int(length) if length and length.isdigit() else None,
        assembly=values.get("assembly"),
        text=line,
    )
