"""Annotations from INFO, for one ALT allele: gene symbol, transcript, HGVS c. and p., consequence,
clinical significance. Whichever the file has, in this order:

- SnpEff `ANN` (fields Allele|Annotation|Impact|Gene_Name|Gene_ID|Feature_Type|Feature_ID|
  Transcript_BioType|Rank|HGVS.c|HGVS.p|...): the first entry whose Allele is this ALT.
- VEP `CSQ` (fields named in the header's description, "Format: Allele|Consequence|..."): the first
  entry for this ALT, preferring the one flagged PICK or CANONICAL when the file has those fields.
  The entry's ALT is its ALLELE_NUM (1-based) when VEP wrote one, else its Allele (VEP writes
  alleles without the shared first base: T>TG is "G", a deletion is "-"). Without either field an
  entry applies to the ALT of a single-ALT record, and to no ALT of a multi-ALT one (warning
  ALLELE_NOT_RESOLVED: the entries cannot be told apart).
- SnpEff's legacy `EFF` ("Effect(Effect_Impact|Functional_Class|Codon_Change|Amino_Acid_Change|
  Amino_Acid_Length|Gene_Name|Transcript_BioType|Gene_Coding|Transcript_ID|Exon_Rank|Genotype_Number
  [|ERRORS|WARNINGS])", sub-fields named in the header's description; SnpEff 3 and older write no
  Genotype_Number): the entry of highest impact among those for this ALT (Genotype_Number is the
  ALT's 1-based number; without it, the same single-ALT rule as CSQ). HGVS only when SnpEff wrote it
  (`-hgvs`: "p.Gly12Ser/c.34G>A"), the bare "G12S" is not HGVS.
- Simple keys (what the project's generator and many lab pipelines write): GENE (one per record),
  HGVSC, HGVSP, CSQ_TERM, CLNSIG (one per ALT allele, Number=A).
CLNSIG is read in every case (ClinVar significance is not part of ANN or CSQ's standard fields);
underscores stand for spaces in VCF values and are turned back into spaces.

`unparsed_formats(header)` names the INFO keys of annotation formats read by none of the above
(bcftools csq BCSQ, GATK Funcotator, ANNOVAR, ClinVar's GENEINFO, a CSQ whose header gives no
format): a file with one of them gets a warning and a count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_ANN_FIELDS = ("allele", "consequence", "impact", "gene", "gene_id", "feature_type", "transcript")
_ANN_HGVS_C, _ANN_HGVS_P = 9, 10
# The EFF layout SnpEff 4 writes (its header names it), used when a header gives no format.
EFF_DEFAULT_FIELDS = (
    "Effect_Impact", "Functional_Class", "Codon_Change", "Amino_Acid_Change", "Amino_Acid_Length",
    "Gene_Name", "Transcript_BioType", "Gene_Coding", "Transcript_ID", "Exon_Rank", "Genotype_Number",
)  # fmt: skip
_EFF_ENTRY = re.compile(r"^\s*([^(|]+)\((.*)\)\s*$")
_IMPACT_RANK = {"HIGH": 0, "MODERATE": 1, "LOW": 2, "MODIFIER": 3}
ALLELE_NOT_RESOLVED = "ALLELE_NOT_RESOLVED"  # entries without an allele, on a multi-ALT record
UNPARSED_FORMAT = "UNPARSED_ANNOTATION_FORMAT"
# INFO keys of annotation formats this module does not read (the key, or a suffix for ANNOVAR's).
_UNPARSED_KEYS = ("BCSQ", "FUNCOTATION", "GENEINFO", "ANNOVAR_DATE")
_UNPARSED_SUFFIXES = (".refGene", ".knownGene", ".ensGene")


@dataclass(frozen=True)
class Annotation:
    source: str | None = None  # ANN, CSQ, INFO_KEYS, or None when the record has none
    gene_symbol: str | None = None
    transcript: str | None = None
    hgvs_c: str | None = None
    hgvs_p: str | None = None
    consequence: str | None = None
    clinical_significance: str | None = None
    warning: str | None = None  # ALLELE_NOT_RESOLVED: the record's entries could not be given an ALT


def per_allele(value, alt_index: int):
    """The value for ALT allele `alt_index` of a Number=A key (a list, or one value when one ALT)."""
    if isinstance(value, str):  # cyvcf2 gives a Number=A String key as one comma-joined string
        value = value.split(",")
    if isinstance(value, list):
        return value[alt_index - 1] if alt_index <= len(value) else None
    return value if alt_index == 1 else None


def vep_allele(ref: str, alt: str) -> str:
    """VEP's spelling of an ALT allele: without the first base when REF and ALT share it."""
    if (len(ref) > 1 or len(alt) > 1) and ref[:1].upper() == alt[:1].upper():
        return alt[1:] or "-"
    return alt


def _text(value) -> str | None:
    if value is None or value == "" or value == ".":
        return None
    return str(value).replace("_", " ")


def _entries(value) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else str(value).split(",")


def from_ann(value, alt: str) -> Annotation | None:
    for entry in _entries(value):
        fields = entry.split("|")
        if len(fields) > _ANN_HGVS_P and fields[0] == alt:
            named = dict(zip(_ANN_FIELDS, fields, strict=False))
            return Annotation(
                "ANN",
                named["gene"] or None,
                named["transcript"] or None,
                fields[_ANN_HGVS_C] or None,
                fields[_ANN_HGVS_P] or None,
                named["consequence"] or None,
            )
    return None


def from_csq(
    value, ref: str, alt: str, fields: list[str], alt_index: int = 1, n_alts: int | None = None
) -> Annotation | None:
    """The CSQ entry of this ALT; an Annotation with only a warning when the entries name no allele
    and the record has several ALTs (or the caller did not say how many)."""
    rows = [dict(zip(fields, entry.split("|"), strict=False)) for entry in _entries(value)]
    if not rows:
        return None
    if "ALLELE_NUM" in fields:
        rows = [row for row in rows if row.get("ALLELE_NUM") == str(alt_index)]
    elif "Allele" in fields:
        wanted = {alt, vep_allele(ref, alt)}
        rows = [row for row in rows if row.get("Allele") in wanted]
    elif n_alts != 1:
        return Annotation(warning=ALLELE_NOT_RESOLVED)
    if not rows:
        return None
    row = next((r for r in rows if r.get("PICK") == "1" or r.get("CANONICAL") == "YES"), rows[0])
    return Annotation(
        "CSQ",
        row.get("SYMBOL") or None,
        row.get("Feature") or None,
        row.get("HGVSc") or None,
        row.get("HGVSp") or None,
        row.get("Consequence") or None,
    )


def from_eff(value, alt_index: int, n_alts: int | None, fields: list[str] | None = None) -> Annotation | None:
    """The EFF entry of highest impact for this ALT (`fields`: the sub-field names from the header;
    None: SnpEff 4's layout, its Genotype_Number used only when an entry has a number there)."""
    names = [name.lower() for name in (fields or EFF_DEFAULT_FIELDS)]
    unresolved = False
    candidates = []
    for position, entry in enumerate(_entries(value)):
        match = _EFF_ENTRY.match(entry)
        if match is None:
            continue
        named = dict(zip(names, match.group(2).split("|"), strict=False))
        number = named.get("genotype_number", "")
        if number.strip().isdigit():
            if int(number) != alt_index:
                continue
        elif n_alts != 1:
            unresolved = True
            continue
        rank = _IMPACT_RANK.get(named.get("effect_impact", "").upper(), len(_IMPACT_RANK))
        candidates.append((rank, position, match.group(1).strip(), named))
    if not candidates:
        return Annotation(warning=ALLELE_NOT_RESOLVED) if unresolved else None
    _, _, effect, named = min(candidates, key=lambda c: c[:2])
    hgvs = (named.get("amino_acid_change") or "").split("/")
    return Annotation(
        "EFF",
        named.get("gene_name") or None,
        named.get("transcript_id") or named.get("transcript") or None,
        next((h for h in hgvs if h.startswith(("c.", "n."))), None),
        next((h for h in hgvs if h.startswith("p.")), None),
        effect or None,
    )


def from_keys(info: dict, alt_index: int) -> Annotation | None:
    keys = ("GENE", "HGVSC", "HGVSP", "CSQ_TERM")
    if not any(key in info for key in keys):
        return None
    hgvs_c = _text_raw(per_allele(info.get("HGVSC"), alt_index))
    return Annotation(
        "INFO_KEYS",
        _text_raw(info.get("GENE")),
        hgvs_c.split(":", 1)[0] if hgvs_c and ":" in hgvs_c else None,
        hgvs_c,
        _text_raw(per_allele(info.get("HGVSP"), alt_index)),
        _text_raw(per_allele(info.get("CSQ_TERM"), alt_index)),
    )


def _text_raw(value) -> str | None:
    return None if value in (None, "", ".") else str(value)


def annotate(
    info: dict,
    ref: str,
    alt: str,
    alt_index: int,
    vep_fields: list[str] | None,
    *,
    eff_fields: list[str] | None = None,
    n_alts: int | None = None,
) -> Annotation:
    """The annotation of one ALT allele of a record (`ref`/`alt` as written in the record; `vep_fields`
    and `eff_fields` from the header, VcfHeader.vep_fields / .eff_fields; `n_alts` the record's ALT
    count, needed to place CSQ and EFF entries that name no allele: without it they go to no ALT)."""
    found = from_ann(info.get("ANN"), alt)
    if found is None and vep_fields and "CSQ" in info:
        found = from_csq(info.get("CSQ"), ref, alt, vep_fields, alt_index, n_alts)
    if (found is None or found.source is None) and "EFF" in info:
        found = _keep_warning(found, from_eff(info.get("EFF"), alt_index, n_alts, eff_fields))
    if found is None or found.source is None:
        found = _keep_warning(found, from_keys(info, alt_index))
    significance = _text(per_allele(info.get("CLNSIG"), alt_index))
    found = found or Annotation()
    return Annotation(
        found.source or ("INFO_KEYS" if significance else None),
        found.gene_symbol,
        found.transcript,
        found.hgvs_c,
        found.hgvs_p,
        found.consequence,
        significance,
        found.warning,
    )


def _keep_warning(before: Annotation | None, after: Annotation | None) -> Annotation | None:
    """`after`, carrying the warning of an earlier format that gave none."""
    if before is None or before.warning is None:
        return after
    after = after or Annotation()
    return replace(after, warning=after.warning or before.warning)


def unparsed_formats(header) -> list[str]:
    """INFO keys of `header` (a VcfHeader) that carry annotations in a format annotate() does not
    read: the file gets a warning (UNPARSED_ANNOTATION_FORMAT) and a count."""
    keys = []
    for key in header.info:
        if key in _UNPARSED_KEYS or key.endswith(_UNPARSED_SUFFIXES):
            keys.append(key)
    if "CSQ" in header.info and not header.vep_fields:
        keys.append("CSQ")
    return keys
