"""Annotations from INFO, for one ALT allele: gene symbol, transcript, HGVS c. and p., consequence,
clinical significance. Whichever the file has, in this order:

- SnpEff `ANN` (fields Allele|Annotation|Impact|Gene_Name|Gene_ID|Feature_Type|Feature_ID|
  Transcript_BioType|Rank|HGVS.c|HGVS.p|...): the first entry whose Allele is this ALT.
- VEP `CSQ` (fields named in the header's description, "Format: Allele|Consequence|..."): the first
  entry for this ALT, preferring the one flagged PICK or CANONICAL when the file has those fields.
  VEP writes alleles without the shared first base (T>TG is "G", a deletion is "-").
- Simple keys (what the project's generator and many lab pipelines write): GENE (one per record),
  HGVSC, HGVSP, CSQ_TERM, CLNSIG (one per ALT allele, Number=A).
CLNSIG is read in every case (ClinVar significance is not part of ANN or CSQ's standard fields);
underscores stand for spaces in VCF values and are turned back into spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

_ANN_FIELDS = ("allele", "consequence", "impact", "gene", "gene_id", "feature_type", "transcript")
_ANN_HGVS_C, _ANN_HGVS_P = 9, 10


@dataclass(frozen=True)
class Annotation:
    source: str | None = None  # ANN, CSQ, INFO_KEYS, or None when the record has none
    gene_symbol: str | None = None
    transcript: str | None = None
    hgvs_c: str | None = None
    hgvs_p: str | None = None
    consequence: str | None = None
    clinical_significance: str | None = None


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


def from_csq(value, ref: str, alt: str, fields: list[str]) -> Annotation | None:
    wanted = {alt, vep_allele(ref, alt)}
    rows = [dict(zip(fields, entry.split("|"), strict=False)) for entry in _entries(value)]
    rows = [row for row in rows if row.get("Allele") in wanted]
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


def annotate(info: dict, ref: str, alt: str, alt_index: int, vep_fields: list[str] | None) -> Annotation:
    """The annotation of one ALT allele of a record (`ref`/`alt` as written in the record)."""
    found = from_ann(info.get("ANN"), alt)
    if found is None and vep_fields and "CSQ" in info:
        found = from_csq(info.get("CSQ"), ref, alt, vep_fields)
    if found is None:
        found = from_keys(info, alt_index)
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
    )
