"""FHIR Diagnostics resources of site B: Observation (vital signs, laboratory, survey, social
history), with a quantity or a text value."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    corrupt_dates,
    json_text,
    masks,
)
from rwe_assets.synthetic.formats.ehr import SiteView, observation_values
from rwe_assets.synthetic.formats.fhir.template import (
    LOINC,
    UCUM,
    US_CORE,
    cat,
    code_columns,
    col,
    event_line,
    event_lines,
)
from rwe_assets.synthetic.util import iso_times, take

CATEGORY_DISPLAY = {
    "vital-signs": "Vital signs",
    "laboratory": "Laboratory",
    "survey": "Survey",
    "exam": "Exam",
    "social-history": "Social History",
}


def observations(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.o_enc)
    lab, enc = tl.o_lab[rows], tl.o_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    is_text = pl.Series(tl.o_text[rows] >= 0)
    values = observation_values(chunk, rows)
    categories = take([x.category for x in cat_.labs], lab)
    vital = categories.to_numpy() == "vital-signs"
    profile = pl.Series(
        np.where(
            vital, "http://hl7.org/fhir/StructureDefinition/vitalsigns", US_CORE + "us-core-observation-lab"
        )
    )
    units = take([x.units for x in cat_.labs], lab)
    columns = {
        **code_columns(take([x.loinc for x in cat_.labs], lab), LOINC, m_),
        "display": json_text(take([x.description for x in cat_.labs], lab)),
        "category": categories,
        "category_display": categories.replace_strict(CATEGORY_DISPLAY, default="Laboratory"),
        "profile": profile,
        "effective": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
        "issued": iso_times(tl.e_start[enc]),
        "number": pl.select(pl.when(pl.lit(is_text)).then(None).otherwise(values)).to_series(),
        "unit": pl.select(pl.when(pl.lit(is_text)).then(None).otherwise(units)).to_series(),
        "text": json_text(pl.select(pl.when(pl.lit(is_text)).then(values).otherwise(None)).to_series()),
    }
    expr = event_line(
        "Observation",
        col("profile"),
        [
            ',"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"',
            col("category"),
            '","display":"',
            col("category_display"),
            '"}]}]',
        ],
        "code",
        [
            ',"effectiveDateTime":"',
            col("effective"),
            '","issued":"',
            col("issued"),
            '"',
            cat(
                ',"valueQuantity":{"value":',
                col("number"),
                ',"unit":"',
                col("unit"),
                '","system":"',
                UCUM,
                '","code":"',
                col("unit"),
                '"}',
            ),
            cat(',"valueCodeableConcept":{"text":"', col("text"), '"}'),
            "}",
        ],
    )
    return event_lines(chunk, view, enc, m_, columns, expr)
