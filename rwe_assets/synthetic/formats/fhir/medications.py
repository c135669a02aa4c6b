"""FHIR Medications resources of site B: MedicationRequest (the stop date in
dispenseRequest.validityPeriod) and Immunization."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import Chunk, Piece, corrupt_dates, json_text, masks
from rwe_assets.synthetic.formats.ehr import SiteView
from rwe_assets.synthetic.formats.fhir.template import (
    CVX,
    RXNORM,
    cat,
    code_columns,
    col,
    event_line,
    event_lines,
    reason_code,
)
from rwe_assets.synthetic.util import DAY_END, SECONDS_PER_DAY, iso_times, take


def medication_requests(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.m_enc)
    drug, reason = tl.m_drug[rows], tl.m_reason[rows]
    enc = tl.m_enc[rows]
    pos = view.position[enc]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    stop = tl.m_stop[rows]
    extract = (DAY_END + 1) * SECONDS_PER_DAY
    status = np.where(stop < 0, "active", np.where(stop < extract, "stopped", "active"))
    site = view.site
    columns = {
        **code_columns(take([d.rxnorm for d in cat_.drugs], drug), RXNORM, m_),
        "display": json_text(take([d.description for d in cat_.drugs], drug)),
        "authored": corrupt_dates(iso_times(tl.m_start[rows]), m_.invalid),
        "start": iso_times(tl.m_start[rows]),
        "end": iso_times(stop).replace("", None),
        "status": status,
        "reason_code": take([c.snomed for c in cat_.conditions], reason).replace("", None),
        "reason_display": json_text(take([c.description for c in cat_.conditions], reason)),
        "practitioner": site.provider_ids[view.provider[pos]],
        "practitioner_name": json_text(pl.Series(site.provider_names[view.provider[pos]])),
    }
    expr = event_line(
        "MedicationRequest",
        "us-core-medicationrequest",
        [
            ',"status":"',
            col("status"),
            '","intent":"order","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-category","code":"community","display":"Community"}],"text":"Community"}]',
        ],
        "medicationCodeableConcept",
        [
            ',"authoredOn":"',
            col("authored"),
            '","requester":{"reference":"Practitioner/',
            col("practitioner"),
            '","display":"Dr. ',
            col("practitioner_name"),
            '"}',
            reason_code(),
            ',"dosageInstruction":[{"sequence":1,"timing":{"repeat":{"frequency":1,"period":1.0,"periodUnit":"d"}},"asNeededBoolean":false}]',
            ',"dispenseRequest":{"validityPeriod":{"start":"',
            col("start"),
            '"',
            cat(',"end":"', col("end"), '"'),
            "}}}",
        ],
    )
    return event_lines(chunk, view, enc, m_, columns, expr)


def immunizations(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.i_enc)
    vax, enc = tl.i_vax[rows], tl.i_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    columns = {
        **code_columns(take([v.cvx for v in cat_.vaccines], vax), CVX, m_),
        "display": json_text(take([v.description for v in cat_.vaccines], vax)),
        "date": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
    }
    expr = event_line(
        "Immunization",
        "us-core-immunization",
        ',"status":"completed"',
        "vaccineCode",
        [',"occurrenceDateTime":"', col("date"), '","primarySource":true}'],
        patient_element="patient",
    )
    return event_lines(chunk, view, enc, m_, columns, expr)
