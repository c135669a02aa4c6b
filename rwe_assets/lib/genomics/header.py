"""The VCF header as data: meta lines, contigs, INFO/FORMAT/FILTER definitions, samples, genome build.

Parsed from the header text cyvcf2 (htslib) read, line by line, so every item keeps its physical line
number. The genome build is taken from `##reference=`, else from the contigs' `assembly=`, else from
the length of chr1/1 (GRCh37 and GRCh38 differ); None when nothing tells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Spellings of the two human builds labs use, folded to the GRC name.
_BUILD_ALIASES = {
    "grch38": "GRCh38",
    "hg38": "GRCh38",
    "b38": "GRCh38",
    "grch37": "GRCh37",
    "hg19": "GRCh37",
    "b37": "GRCh37",
    "hs37d5": "GRCh37",
    "human_g1k_v37": "GRCh37",
}
_BUILD_IN_TEXT = re.compile(r"(grch3[78]|hg19|hg38|hs37d5|human_g1k_v37|b3[78])", re.IGNORECASE)
_CHR1_LENGTH_BUILD = {248956422: "GRCh38", 249250621: "GRCh37"}
_STRUCTURED = re.compile(r"^##(\w+)=<(.*)>\s*$")
_KEY_VALUE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,]*)')
_CSQ_FORMAT = re.compile(r"Format:\s*([^\"]+)")
CHROM_LINE_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")


def normalize_build(text: str | None) -> str | None:
    """GRCh37 / GRCh38 for any common spelling found in `text` (a name, a FASTA path), else None."""
    if not text:
        return None
    match = _BUILD_IN_TEXT.search(text)
    return _BUILD_ALIASES[match.group(1).lower()] if match else None


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

    @property
    def build(self) -> str | None:
        named = normalize_build(self.reference)
        if named:
            return named
        assemblies = {normalize_build(i.assembly) for i in self.items if i.section == "contig"} - {None}
        if len(assemblies) == 1:
            return assemblies.pop()
        for name in ("chr1", "1"):
            if name in self.contigs:
                return _CHR1_LENGTH_BUILD.get(self.contigs[name] or -1)
        return None

    @property
    def vep_fields(self) -> list[str] | None:
        """The field names of VEP's CSQ, from its INFO description ('... Format: Allele|Consequence|...')."""
        csq = self.info.get("CSQ")
        match = _CSQ_FORMAT.search(csq.description or "") if csq else None
        return [name.strip() for name in match.group(1).split("|")] if match else None


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
