"""FHIR NDJSON lines templated column-wise with polars (no per-resource Python): a resource is a
concatenation of literal JSON text and columns of escaped strings, optional elements null.

What every resource group shares: code systems, the template helpers (line, cat, coding, concept,
meta, head), code columns with site B's local codes, Patient/Encounter references, rendering a
template over a frame into a Piece (a malformed row is a line cut in half), and the skeleton of an
event resource (event_line, event_lines): type, id, profile, code, patient and encounter."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import Chunk, Masks, Piece, csv_lines, localize
from rwe_assets.synthetic.formats.ehr import SiteView
from rwe_assets.synthetic.util import uuids

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


def meta(profile: str | pl.Expr) -> list:
    """The resource's profile: a US Core profile by name, or a column of profile URLs."""
    return ['"meta":{"profile":["', profile if isinstance(profile, pl.Expr) else US_CORE + profile, '"]}']


def head(resource_type: str, profile: str | pl.Expr) -> list:
    """What every resource opens with: its type, its id (column ``id``) and its profile."""
    return ['{"resourceType":"', resource_type, '","id":"', col("id"), '",', meta(profile)]


def reason_code() -> pl.Expr:
    """The optional reasonCode (columns reason_code, reason_display; SNOMED CT), left out when null."""
    return cat(',"reasonCode":[{"coding":[', coding(SNOMED, col("reason_code"), col("reason_display")), "]}]")


# --- the skeleton of an event resource (one per encounter's clinical record) ---------------------


def event_line(resource_type: str, profile: str | pl.Expr, before, code_element: str, after,
               patient_element: str = "subject") -> pl.Expr:  # fmt: skip
    """An event resource: `head`, its own elements up to its code (`before`), the code (columns
    system, code, display), the Patient and Encounter references (columns patient, encounter), then
    the rest (`after`)."""
    return line(
        head(resource_type, profile),
        before,
        f',"{code_element}":',
        concept(col("system"), col("code"), col("display")),
        f',"{patient_element}":{{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"}',
        after,
    )


def event_lines(
    chunk: Chunk, view: SiteView, enc: np.ndarray, m: Masks, columns: dict, expr: pl.Expr
) -> Piece:
    """The lines of an event resource, one per row of `enc` (its encounters): a fresh id, the patient
    and encounter references, then the resource's own `columns`; `m` marks the rows to damage."""
    frame = pl.DataFrame({"id": uuids(chunk.rng, len(enc)), **refs(chunk, view, enc), **columns})
    return resource_lines(frame, expr, m)


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
