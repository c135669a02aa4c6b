"""FHIR Clinical resources of site B: Condition, Procedure, AllergyIntolerance."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import Chunk, Piece, corrupt_dates, json_text, localize, masks
from rwe_assets.synthetic.formats.ehr import SiteView
from rwe_assets.synthetic.formats.fhir.template import (
    LOCAL_PREFIX,
    LOCAL_SYSTEM,
    RXNORM,
    SNOMED,
    cat,
    code_columns,
    col,
    concept,
    event_line,
    event_lines,
    reason_code,
)
from rwe_assets.synthetic.util import iso_dates, iso_times, take


def conditions(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.c_enc)
    cond = tl.c_cond[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    stop = tl.c_stop[rows]
    columns = {
        **code_columns(take([c.snomed for c in cat_.conditions], cond), SNOMED, m_),
        "display": json_text(take([c.description for c in cat_.conditions], cond)),
        "onset": corrupt_dates(iso_dates(tl.c_start[rows]), m_.invalid),
        "abatement": iso_dates(np.where(stop < 0, -(10**9), stop)).replace("", None),
        "recorded": iso_times(tl.e_start[tl.c_enc[rows]]),
        "status": np.where(stop < 0, "active", "resolved"),
    }
    expr = event_line(
        "Condition",
        "us-core-condition-encounter-diagnosis",
        [
            ',"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"',
            col("status"),
            '"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},'
            '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis","display":"Encounter Diagnosis"}]}]',
        ],
        "code",
        [
            ',"onsetDateTime":"',
            col("onset"),
            '"',
            cat(',"abatementDateTime":"', col("abatement"), '"'),
            ',"recordedDate":"',
            col("recorded"),
            '"}',
        ],
    )
    return event_lines(chunk, view, tl.c_enc[rows], m_, columns, expr)


def procedures(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.p_enc)
    proc, reason, enc = tl.p_proc[rows], tl.p_reason[rows], tl.p_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    start = tl.e_start[enc]
    stop = np.minimum(
        start + chunk.rng.integers(5, 45, len(rows)) * 60, np.maximum(tl.e_stop[enc], start + 300)
    )
    columns = {
        **code_columns(take([p.snomed for p in cat_.procedures], proc), SNOMED, m_),
        "display": json_text(take([p.description for p in cat_.procedures], proc)),
        "start": corrupt_dates(iso_times(start), m_.invalid),
        "end": iso_times(stop),
        "reason_code": take([c.snomed for c in cat_.conditions], reason).replace("", None),
        "reason_display": json_text(take([c.description for c in cat_.conditions], reason)),
    }
    expr = event_line(
        "Procedure",
        "us-core-procedure",
        ',"status":"completed"',
        "code",
        [
            ',"performedPeriod":{"start":"',
            col("start"),
            '","end":"',
            col("end"),
            '"}',
            reason_code(),
            "}",
        ],
    )
    return event_lines(chunk, view, enc, m_, columns, expr)


def allergies(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.a_enc)
    allergy, enc = tl.a_allergy[rows], tl.a_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    systems = [SNOMED if a.system == "SNOMED-CT" else RXNORM for a in cat_.allergies]
    first_reaction = [a.reactions[0] if a.reactions else (None, None, None) for a in cat_.allergies]
    system = take(systems, allergy)
    codes = localize(take([a.code for a in cat_.allergies], allergy), m_.unmapped, LOCAL_PREFIX)
    columns = {
        "system": pl.select(
            pl.when(pl.lit(pl.Series(m_.unmapped))).then(pl.lit(LOCAL_SYSTEM)).otherwise(system)
        ).to_series(),
        "code": codes,
        "display": json_text(take([a.description for a in cat_.allergies], allergy)),
        "category": take([a.category for a in cat_.allergies], allergy),
        "recorded": corrupt_dates(iso_dates(tl.a_start[rows]), m_.invalid),
        "reaction_code": take([r[0] or "" for r in first_reaction], allergy).replace("", None),
        "reaction_display": json_text(take([r[1] or "" for r in first_reaction], allergy)),
        "severity": take([(r[2] or "").lower() for r in first_reaction], allergy),
    }
    expr = event_line(
        "AllergyIntolerance",
        "us-core-allergyintolerance",
        [
            ',"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},'
            '"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"confirmed"}]},'
            '"type":"allergy","category":["',
            col("category"),
            '"],"criticality":"low"',
        ],
        "code",
        [
            ',"recordedDate":"',
            col("recorded"),
            '"',
            cat(
                ',"reaction":[{"manifestation":[',
                concept(SNOMED, col("reaction_code"), col("reaction_display")),
                '],"severity":"',
                col("severity"),
                '"}]',
            ),
            "}",
        ],
        patient_element="patient",
    )
    return event_lines(chunk, view, enc, m_, columns, expr)
