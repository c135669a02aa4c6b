"""FHIR NDJSON lines templated column-wise with polars (no per-resource Python): a resource is a
concatenation of literal JSON text and columns of escaped strings, optional elements null.

What every resource group shares: code systems, the template helpers (line, cat, coding, concept,
meta), code columns with site B's local codes, Patient/Encounter references, and rendering a
template over a frame into a Piece (a malformed row is a line cut in half)."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import Chunk, Masks, Piece, csv_lines, localize
from rwe_assets.synthetic.formats.ehr import SiteView

SOURCE = "ehr_site_b"
LOCAL_SYSTEM = "http://site-b.example.org/fhir/CodeSystem/local-codes"
LOCAL_PREFIX = "SB"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def _flat(parts) -> list:
    out = []
    for part in parts:
        if isinstance(part, list | tuple):
            out.extend(_flat(part))
        else:
            out.append(part)
    return out


def _parts(parts) -> list[pl.Expr]:
    """Expressions, adjacent literal text merged into one literal (fewer pieces to concatenate)."""
    out: list[pl.Expr] = []
    text: list[str] = []
    for part in _flat(parts):
        if isinstance(part, pl.Expr):
            if text:
                out.append(pl.lit("".join(text)))
                text = []
            out.append(part)
        else:
            text.append(str(part))
    if text:
        out.append(pl.lit("".join(text)))
    return out


def cat(*parts) -> pl.Expr:
    """Concatenation that is null when any part is null (an optional element)."""
    return pl.concat_str(_parts(parts))


def line(*parts) -> pl.Expr:
    """A resource: its elements concatenated, optional (null) elements left out."""
    return pl.concat_str(_parts(parts), ignore_nulls=True)


def col(name: str) -> pl.Expr:
    return pl.col(name)


def coding(system, code, display) -> list:
    return ['{"system":"', system, '","code":"', code, '","display":"', display, '"}']


def concept(system, code, display) -> list:
    return ['{"coding":[', coding(system, code, display), '],"text":"', display, '"}']


def meta(profile: str) -> str:
    return f'"meta":{{"profile":["{US_CORE}{profile}"]}}'


def resource_lines(frame: pl.DataFrame, expr: pl.Expr, m: Masks) -> Piece:
    if frame.height == 0:
        return Piece(b"", 0)
    text = frame.select(expr.alias("line")).to_series()
    if m.malformed.any():
        cut = text.str.slice(0, (text.str.len_bytes() // 2).cast(pl.Int64))
        text = pl.select(pl.when(pl.lit(pl.Series(m.malformed))).then(cut).otherwise(text)).to_series()
    data = csv_lines(pl.DataFrame({"line": text}), quote_style="never")
    return Piece(data, frame.height, int(m.malformed.sum()), int(m.invalid.sum()), int(m.unmapped.sum()))


def code_columns(values: pl.Series, system: str, m: Masks) -> dict[str, pl.Series]:
    return {
        "system": pl.select(
            pl.when(pl.lit(pl.Series(m.unmapped))).then(pl.lit(LOCAL_SYSTEM)).otherwise(pl.lit(system))
        ).to_series(),
        "code": localize(values, m.unmapped, LOCAL_PREFIX),
    }


def refs(chunk: Chunk, view: SiteView, enc: np.ndarray) -> dict[str, pl.Series]:
    pos = view.position[enc]
    return {
        "patient": view.records.ids.gather(view.patient[pos]),
        "encounter": chunk.encounter_ids.gather(enc),
    }
