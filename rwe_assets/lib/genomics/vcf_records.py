"""The cyvcf2 path of the VCF reader (``vcf_reader``): a batch of cyvcf2 records read into columns,
each field with one map over READ_RECORDS records; the header's declarations decide how INFO is
encoded and which fields are undeclared (counted, read as String)."""

from __future__ import annotations

import json
import json.encoder
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, methodcaller

import cyvcf2
import numpy as np

from rwe_assets.lib.genomics.header import VcfHeader
from rwe_assets.lib.genomics.vcf_call_schema import VcfCounts

INT32_MISSING = -(2**31)  # htslib's bcf_int32_missing; bcf_int32_vector_end is one more
INT32_VECTOR_END = INT32_MISSING + 1


@dataclass
class RecordColumns:
    """Per-record values of one batch, in file order."""

    text: dict[str, list]  # chrom, pos, id, ref, alt, qual, filter, info, format
    alt_counts: list[int]
    genotypes: list[np.ndarray | None]  # cyvcf2 genotype arrays (samples x (ploidy + 1)), None without GT
    depth: list[np.ndarray | None]
    allele_depths: list[np.ndarray | None]
    quality: list[np.ndarray | None]

    @classmethod
    def empty(cls) -> RecordColumns:
        names = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", "format")
        return cls({n: [] for n in names}, [], [], [], [], [])

    def extend(self, other: RecordColumns) -> None:
        for name, values in self.text.items():
            values.extend(other.text[name])
        self.alt_counts.extend(other.alt_counts)
        self.genotypes.extend(other.genotypes)
        self.depth.extend(other.depth)
        self.allele_depths.extend(other.allele_depths)
        self.quality.extend(other.quality)

    def __len__(self) -> int:
        return len(self.alt_counts)


_INFO_ENCODER = json.JSONEncoder(separators=(",", ":"))
# The C encoder that _INFO_ENCODER.encode builds on every call, built once (same arguments, so the
# same text): encoding a batch is then one map with no Python frame per record.
_C_INFO_ENCODER = (
    json.encoder.c_make_encoder(
        None, _INFO_ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def _info_texts(infos: list[dict]) -> list[str]:
    if _C_INFO_ENCODER is None:
        return list(map(_INFO_ENCODER.encode, infos))
    return list(map("".join, map(_C_INFO_ENCODER, infos, repeat(0))))


class Declared:
    """The INFO and FORMAT ids the header declares; counts the records using undeclared ones."""

    def __init__(self, header: VcfHeader, counts: VcfCounts):
        self.info = frozenset(header.info)
        self.formats = frozenset(header.formats)
        self.counts = counts
        self._format_strings: dict[str, tuple[str, ...]] = {}  # FORMAT text -> its undeclared keys

    def info_json(self, infos: list[dict]) -> list[str]:
        """INFO of each record as a JSON object. Float values are htslib's 32-bit floats widened to 64
        bits (AF=0.643 reads 0.6430000066757202; 7 significant digits give the file's text back):
        rounding each value here would triple the cost of the record. An undeclared key without a
        value (htslib reads it as an empty String) is true, like a flag."""
        undeclared = set().union(*infos) - self.info
        if undeclared:  # rare: only then a look at each record
            for info in infos:
                for key in info.keys() & undeclared:
                    self._count(f"INFO:{key}")
                    if info[key] is False:
                        info[key] = True
        return _info_texts(infos)

    def check_formats(self, format_texts: list[str], keys_of: dict[str, list[str]]) -> None:
        """Counts the records per undeclared FORMAT key, once per distinct FORMAT text of the batch."""
        self.check_format_counts(Counter(format_texts), keys_of)

    def check_format_counts(self, records_per_format: dict[str, int], keys_of: dict[str, list[str]]) -> None:
        for format_text, records in records_per_format.items():
            undeclared = self._format_strings.get(format_text)
            if undeclared is None:
                keys = keys_of[format_text]
                undeclared = self._format_strings[format_text] = tuple(
                    k for k in keys if k not in self.formats
                )
            for key in undeclared:
                self._count(f"FORMAT:{key}", records)

    def _count(self, name: str, records: int = 1) -> None:
        undeclared = self.counts.undeclared
        undeclared[name] = undeclared.get(name, 0) + records


def _integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        return INT32_MISSING
    return value if INT32_VECTOR_END < value < 2**31 else INT32_MISSING


def _integers_from_text(values: np.ndarray) -> np.ndarray:
    """(samples, width) int32 from a field htslib read as String ('12', '5,7', '.'): integers where the
    text is one, else missing; shorter lists end with htslib's vector end."""
    flat = values.reshape(values.shape[0], -1)[:, 0]
    items = [(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).split(",") for v in flat]
    out = np.full((len(items), max((len(i) for i in items), default=1)), INT32_VECTOR_END, np.int32)
    for row, texts in enumerate(items):
        out[row, : len(texts)] = [_integer(t) for t in texts]
    return out


def _as_integers(values: np.ndarray | None) -> np.ndarray | None:
    if values is None:
        return None
    if values.dtype.kind == "f":  # a caller that declares the field Float
        with np.errstate(invalid="ignore"):  # NaN (missing) is replaced below, never cast
            values = np.where(np.isfinite(values), np.rint(values), INT32_MISSING).astype(np.int32)
    elif values.dtype.kind in "SUO":  # undeclared (htslib assumes String) or declared String
        values = _integers_from_text(values)
    return values


# --------------------------------------------------------------------------- one batch of records

# Read through map() over a batch's records: C-level getters, no Python frame per record.
_SITE_FIELDS = attrgetter("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTERS")
_FORMAT = attrgetter("FORMAT")
RECORD_INFO = attrgetter("INFO")
_GENOTYPE = attrgetter("genotype")
_ARRAY = methodcaller("array")


def _where_present(variants, format_texts, keys_of, key: str, read: Callable[[list], list]) -> list:
    """read(records) for the records whose FORMAT has `key`, None for the others."""
    having = {text for text, keys in keys_of.items() if key in keys}
    if len(having) == len(keys_of):
        return read(variants)
    out = [None] * len(variants)
    if having:
        rows = [i for i, text in enumerate(format_texts) if text in having]
        for i, value in zip(rows, read([variants[i] for i in rows]), strict=True):
            out[i] = value
    return out


def _genotype_arrays(variants: list[cyvcf2.Variant]) -> list[np.ndarray]:
    return list(map(_ARRAY, map(_GENOTYPE, variants)))


def _format_integers(variants, format_texts, keys_of, key: str) -> list[np.ndarray | None]:
    read = methodcaller("format", key)
    values = _where_present(variants, format_texts, keys_of, key, lambda records: list(map(read, records)))
    if {a.dtype.kind for a in values if a is not None} & set("fSUO"):
        values = list(map(_as_integers, values))
    return values


TEXT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", "format")


def _text_columns(variants: list, formats: list[list[str]], declared: Declared) -> tuple[dict, list[int]]:
    """The per-record text columns and ALT counts, each read with one map over the records."""
    chrom, pos, ids, ref, alts, qual, filters = map(list, zip(*map(_SITE_FIELDS, variants), strict=True))
    format_texts = list(map(":".join, formats))
    declared.check_formats(format_texts, dict(zip(format_texts, formats, strict=True)))
    text = {
        "chrom": chrom,
        "pos": pos,
        "id": [i or "." for i in ids],
        "ref": ref,
        "alt": [a or "." for a in map(",".join, alts)],
        "qual": qual,
        "filter": [f or "." for f in map(";".join, filters)],
        "info": declared.info_json(list(map(dict, map(RECORD_INFO, variants)))),
        "format": format_texts,
    }
    return text, list(map(len, alts))


def read_batch(variants: list[cyvcf2.Variant], declared: Declared) -> RecordColumns:
    """The columns of a few records (READ_RECORDS), each read with one map over the records."""
    formats = list(map(_FORMAT, variants))
    text, alt_counts = _text_columns(variants, formats, declared)
    format_texts = text["format"]
    keys_of = dict(zip(format_texts, formats, strict=True))
    return RecordColumns(
        text,
        alt_counts,
        _where_present(variants, format_texts, keys_of, "GT", _genotype_arrays),
        _format_integers(variants, format_texts, keys_of, "DP"),
        _format_integers(variants, format_texts, keys_of, "AD"),
        _format_integers(variants, format_texts, keys_of, "GQ"),
    )
