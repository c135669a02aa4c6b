"""What the VCF reader (``vcf_reader``) produces and counts: the call rows' Arrow schema (as stored,
and as streamed with dictionary-encoded text) and VcfCounts, what one pass over a file saw."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

ALLELE_INDEX_OUT_OF_RANGE = "ALLELE_INDEX_OUT_OF_RANGE"

CALL_FIELDS = [
    pa.field("record_number", pa.int64()),  # 1-based data record of the file
    pa.field("sample_index", pa.int32()),  # 0-based column among the samples
    pa.field("sample_id", pa.string()),
    pa.field("alt_index", pa.int16()),  # the ALT allele (1-based) this row counts
    pa.field("chrom", pa.string()),
    pa.field("pos", pa.int64()),
    pa.field("id", pa.string()),
    pa.field("ref", pa.string()),
    pa.field("alt", pa.string()),  # every ALT allele of the record, comma-separated as in the file
    pa.field("qual", pa.float32()),
    pa.field("filter", pa.string()),  # PASS, '.', or the failed filters joined by ';'
    pa.field("info", pa.string()),  # JSON object
    pa.field("format", pa.string()),  # the FORMAT keys, e.g. GT:AD:DP:GQ
    pa.field("genotype", pa.string()),  # e.g. 0/1, 1|0, 1, ./1
    pa.field("depth", pa.int32()),  # FORMAT DP
    pa.field("allele_depths", pa.list_(pa.int32())),  # FORMAT AD: REF first, then every ALT
    pa.field("genotype_quality", pa.int32()),  # FORMAT GQ
]
# Text repeated on every call of a record (or sample, or genotype spelling) streams as dictionary
# arrays: no copy of INFO per call, and Delta stores them as plain strings (CALL_FIELDS).
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
DICTIONARY_COLUMNS = {"sample_id", "chrom", "id", "ref", "alt", "filter", "info", "format", "genotype"}
STREAM_FIELDS = [pa.field(f.name, _DICTIONARY) if f.name in DICTIONARY_COLUMNS else f for f in CALL_FIELDS]
CALL_SCHEMA = pa.schema(STREAM_FIELDS)

TEXT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", "format")


@dataclass(frozen=True)
class OutOfRange:
    """A (record, sample, allele) whose GT allele index is above the record's ALT count."""

    record_number: int
    sample_index: int
    allele: int
    alt_count: int
    genotype: str  # GT as written, e.g. 0/2


@dataclass
class VcfCounts:
    """What one pass over a file saw; calls = rows produced (out-of-range alleles are not calls)."""

    records: int = 0
    records_without_genotypes: int = 0
    genotypes: int = 0  # (record, sample) cells with a GT
    calls: int = 0
    hom_ref: int = 0
    no_call: int = 0
    allele_index_out_of_range: int = 0
    undeclared: dict[str, int] = field(default_factory=dict)  # "INFO:XX" / "FORMAT:DP" -> records
    out_of_range: list[OutOfRange] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        """The counts stored in raw vcf_header: the genotype counts, the out-of-range alleles, the
        number of undeclared fields and, per undeclared field, the records that use it."""
        counts = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        counts["undeclared_fields"] = len(self.undeclared)
        counts.update({f"undeclared_{name}": n for name, n in sorted(self.undeclared.items())})
        return counts

    def warnings(self) -> list[str]:
        """One line per undeclared field, INFO first, by name."""
        order = sorted(self.undeclared, key=lambda name: (not name.startswith("INFO:"), name))
        out = []
        for name in order:
            section, item = name.split(":", 1)
            n = self.undeclared[name]
            out.append(
                f"undeclared {section} field {item} ({n} record{'s' if n != 1 else ''}) read as String"
            )
        return out
