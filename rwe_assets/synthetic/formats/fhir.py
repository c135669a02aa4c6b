"""EHR site B: a FHIR R4 bulk export (one NDJSON file per resource type, `<Type>.000.ndjson`, one
resource per line, references `Patient/<id>`, `Encounter/<id>`, `Practitioner/<id>`,
`Organization/<id>`), shaped like Synthea's bulk output with US Core profiles.

Lines are templated column-wise with polars (no per-resource Python), from escaped strings."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Masks,
    Piece,
    corrupt_dates,
    csv_lines,
    json_text,
    localize,
    masks,
    no_masks,
    optional,
)
from rwe_assets.synthetic.formats.ehr import SiteView, site_view
from rwe_assets.synthetic.formats.synthea import device_udis, observation_values
from rwe_assets.synthetic.util import DAY_END, SECONDS_PER_DAY, YEAR, fixed, iso_dates, iso_times, take, uuids

SOURCE = "ehr_site_b"
LOCAL_SYSTEM = "http://site-b.example.org/fhir/CodeSystem/local-codes"
LOCAL_PREFIX = "SB"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Procedure",
    "Observation",
    "Immunization",
    "AllergyIntolerance",
    "Device",
    "Organization",
    "Practitioner",
)
CATEGORY_DISPLAY = {
    "vital-signs": "Vital signs",
    "laboratory": "Laboratory",
    "survey": "Survey",
    "exam": "Exam",
    "social-history": "Social History",
}


def file_name(resource_type: str, compress: bool) -> str:
    return f"{resource_type}.000.ndjson.gz" if compress else f"{resource_type}.000.ndjson"


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


def _lines(frame: pl.DataFrame, expr: pl.Expr, m: Masks) -> Piece:
    if frame.height == 0:
        return Piece(b"", 0)
    text = frame.select(expr.alias("line")).to_series()
    if m.malformed.any():
        cut = text.str.slice(0, (text.str.len_bytes() // 2).cast(pl.Int64))
        text = pl.select(pl.when(pl.lit(pl.Series(m.malformed))).then(cut).otherwise(text)).to_series()
    data = csv_lines(pl.DataFrame({"line": text}), quote_style="never")
    return Piece(data, frame.height, int(m.malformed.sum()), int(m.invalid.sum()), int(m.unmapped.sum()))


def _code_columns(values: pl.Series, system: str, m: Masks) -> dict[str, pl.Series]:
    return {
        "system": pl.select(
            pl.when(pl.lit(pl.Series(m.unmapped))).then(pl.lit(LOCAL_SYSTEM)).otherwise(pl.lit(system))
        ).to_series(),
        "code": localize(values, m.unmapped, LOCAL_PREFIX),
    }


def render(chunk: Chunk) -> dict[str, Piece]:
    view = site_view(chunk, 1, SOURCE)
    out = {
        "Patient": _patients(chunk, view),
        "Encounter": _encounters(chunk, view),
        "Condition": _conditions(chunk, view),
        "MedicationRequest": _medications(chunk, view),
        "Procedure": _procedures(chunk, view),
        "Observation": _observations(chunk, view),
        "Immunization": _immunizations(chunk, view),
        "AllergyIntolerance": _allergies(chunk, view),
        "Device": _devices(chunk, view),
    }
    if chunk.first_in_batch:
        out.update(_reference(chunk))
    return out


def _refs(chunk: Chunk, view: SiteView, enc: np.ndarray) -> dict[str, pl.Series]:
    pos = view.position[enc]
    return {
        "patient": view.records.ids.gather(view.patient[pos]),
        "encounter": chunk.encounter_ids.gather(enc),
    }


def _patients(chunk: Chunk, view: SiteView) -> Piece:
    r = view.records
    p = chunk.persons.take(r.person)
    names, places = chunk.names, chunk.names.places
    m = len(r.person)
    rng = chunk.rng
    adult = (DAY_END - p.birth) / YEAR >= 18
    prefix = np.where(adult, np.where(p.sex == 0, "Mr.", np.where(p.marital == "M", "Mrs.", "Ms.")), "")
    race = np.array([x[1] for x in names.races])[p.race]
    race_display = np.array([x[2] for x in names.races])[p.race]
    maiden = np.where((p.sex == 1) & (p.birth_surname != r.last), p.birth_surname, "")
    twin = p.twin_of > 0
    frame = pl.DataFrame(
        {
            "id": r.ids,
            "family": json_text(pl.Series(r.last)),
            "given": json_text(pl.Series(r.first)),
            "middle": optional(p.middle),
            "prefix": optional(prefix),
            "maiden": json_text(optional(maiden)),
            "ssn": optional(r.ssn),
            "drivers": optional(p.drivers),
            "phone": r.phone,
            "gender": np.where(p.sex == 1, "female", "male"),
            "sex": np.where(p.sex == 1, "F", "M"),
            "birth": iso_dates(r.birth),
            "deceased": optional(np.where(p.death <= DAY_END, iso_dates(p.death).to_numpy(), "")),
            "street": json_text(pl.Series(r.street)),
            "city": take([x.city for x in places], r.place),
            "state": take([x.state for x in places], r.place),
            "zip": take([x.zip for x in places], r.place),
            "race": race,
            "race_display": race_display,
            "eth_code": np.where(p.hispanic, "2135-2", "2186-5"),
            "eth_display": np.where(p.hispanic, "Hispanic or Latino", "Not Hispanic or Latino"),
            "marital": optional(p.marital),
            "twin": optional(np.where(twin, np.where(p.pid < p.twin_of, "1", "2"), "")),
            "lat": fixed(np.array([x.lat for x in places])[r.place] + rng.normal(0, 0.02, m), 6),
            "lon": fixed(np.array([x.lon for x in places])[r.place] + rng.normal(0, 0.02, m), 6),
        }
    )
    marital_display = pl.col("marital").replace_strict(
        {"M": "Married", "S": "Never Married", "D": "Divorced", "W": "Widowed"}, default=None
    )
    expr = line(
        '{"resourceType":"Patient","id":"',
        col("id"),
        '",',
        meta("us-core-patient"),
        ',"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"',
        col("race"),
        '","display":"',
        col("race_display"),
        '"}},{"url":"text","valueString":"',
        col("race_display"),
        '"}]},{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"',
        col("eth_code"),
        '","display":"',
        col("eth_display"),
        '"}},{"url":"text","valueString":"',
        col("eth_display"),
        '"}]},{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"',
        col("sex"),
        '"}]',
        ',"identifier":[{"system":"https://github.com/synthetichealth/synthea","value":"',
        col("id"),
        '"},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR","display":"Medical Record Number"}],"text":"Medical Record Number"},"system":"http://hospital.smarthealthit.org","value":"',
        col("id"),
        '"}',
        cat(
            ',{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"SS","display":"Social Security Number"}],"text":"Social Security Number"},"system":"http://hl7.org/fhir/sid/us-ssn","value":"',
            col("ssn"),
            '"}',
        ),
        cat(
            ',{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"DL","display":"Driver\'s license number"}],"text":"Driver\'s license number"},"system":"urn:oid:2.16.840.1.113883.4.3.25","value":"',
            col("drivers"),
            '"}',
        ),
        '],"name":[{"use":"official","family":"',
        col("family"),
        '","given":["',
        col("given"),
        '"',
        cat(',"', col("middle"), '"'),
        "]",
        cat(',"prefix":["', col("prefix"), '"]'),
        "}",
        cat(',{"use":"maiden","family":"', col("maiden"), '","given":["', col("given"), '"]}'),
        '],"telecom":[{"system":"phone","value":"',
        col("phone"),
        '","use":"home"}],"gender":"',
        col("gender"),
        '","birthDate":"',
        col("birth"),
        '"',
        cat(',"deceasedDateTime":"', col("deceased"), '"'),
        ',"address":[{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/geolocation","extension":[{"url":"latitude","valueDecimal":',
        col("lat"),
        '},{"url":"longitude","valueDecimal":',
        col("lon"),
        '}]}],"line":["',
        col("street"),
        '"],"city":"',
        col("city"),
        '","state":"',
        col("state"),
        '","postalCode":"',
        col("zip"),
        '","country":"US"}]',
        cat(
            ',"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"',
            col("marital"),
            '","display":"',
            marital_display,
            '"}],"text":"',
            marital_display,
            '"}',
        ),
        pl.when(col("twin").is_null())
        .then(pl.lit(',"multipleBirthBoolean":false'))
        .otherwise(cat(',"multipleBirthInteger":', col("twin"))),
        ',"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-US","display":"English (United States)"}],"text":"English (United States)"}}]}',
    )
    return _lines(frame, expr, no_masks(m))


def _encounters(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    enc = view.enc
    site = view.site
    etype, reason = tl.e_type[enc], tl.e_reason[enc]
    m_ = masks(chunk.rng, len(enc), chunk.config, codes=False)
    r = view.records
    frame = pl.DataFrame(
        {
            "id": chunk.encounter_ids.gather(enc),
            "patient": r.ids.gather(view.patient),
            "patient_name": json_text(
                pl.Series(np.char.add(np.char.add(r.first[view.patient], " "), r.last[view.patient]))
            ),
            "class": take([e.fhir_class for e in cat_.encounter_types], etype),
            "type_code": take([e.snomed for e in cat_.encounter_types], etype),
            "type_display": json_text(take([e.description for e in cat_.encounter_types], etype)),
            "start": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
            "end": iso_times(tl.e_stop[enc]),
            "reason_code": take([c.snomed for c in cat_.conditions], reason).replace("", None),
            "reason_display": json_text(take([c.description for c in cat_.conditions], reason)),
            "practitioner": site.provider_ids[view.provider],
            "practitioner_name": json_text(pl.Series(site.provider_names[view.provider])),
            "org": site.org_ids[view.org],
            "org_name": json_text(pl.Series(site.org_names[view.org])),
        }
    )
    expr = line(
        '{"resourceType":"Encounter","id":"',
        col("id"),
        '",',
        meta("us-core-encounter"),
        ',"identifier":[{"use":"official","system":"https://github.com/synthetichealth/synthea","value":"',
        col("id"),
        '"}],"status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"',
        col("class"),
        '"},"type":[',
        concept(SNOMED, col("type_code"), col("type_display")),
        '],"subject":{"reference":"Patient/',
        col("patient"),
        '","display":"',
        col("patient_name"),
        '"},"participant":[{"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PPRF","display":"primary performer"}],"text":"primary performer"}],"period":{"start":"',
        col("start"),
        '","end":"',
        col("end"),
        '"},"individual":{"reference":"Practitioner/',
        col("practitioner"),
        '","display":"Dr. ',
        col("practitioner_name"),
        '"}}],"period":{"start":"',
        col("start"),
        '","end":"',
        col("end"),
        '"}',
        cat(',"reasonCode":[{"coding":[', coding(SNOMED, col("reason_code"), col("reason_display")), "]}]"),
        ',"serviceProvider":{"reference":"Organization/',
        col("org"),
        '","display":"',
        col("org_name"),
        '"}}',
    )
    return _lines(frame, expr, m_)


def _conditions(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.c_enc)
    cond = tl.c_cond[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    stop = tl.c_stop[rows]
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, tl.c_enc[rows]),
            **_code_columns(take([c.snomed for c in cat_.conditions], cond), SNOMED, m_),
            "display": json_text(take([c.description for c in cat_.conditions], cond)),
            "onset": corrupt_dates(iso_dates(tl.c_start[rows]), m_.invalid),
            "abatement": iso_dates(np.where(stop < 0, -(10**9), stop)).replace("", None),
            "recorded": iso_times(tl.e_start[tl.c_enc[rows]]),
            "status": np.where(stop < 0, "active", "resolved"),
        }
    )
    expr = line(
        '{"resourceType":"Condition","id":"',
        col("id"),
        '",',
        meta("us-core-condition-encounter-diagnosis"),
        ',"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"',
        col("status"),
        '"}]},"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},'
        '"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis","display":"Encounter Diagnosis"}]}],'
        '"code":',
        concept(col("system"), col("code"), col("display")),
        ',"subject":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"onsetDateTime":"',
        col("onset"),
        '"',
        cat(',"abatementDateTime":"', col("abatement"), '"'),
        ',"recordedDate":"',
        col("recorded"),
        '"}',
    )
    return _lines(frame, expr, m_)


def _medications(chunk: Chunk, view: SiteView) -> Piece:
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
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
            **_code_columns(take([d.rxnorm for d in cat_.drugs], drug), RXNORM, m_),
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
    )
    expr = line(
        '{"resourceType":"MedicationRequest","id":"',
        col("id"),
        '",',
        meta("us-core-medicationrequest"),
        ',"status":"',
        col("status"),
        '","intent":"order","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/medicationrequest-category","code":"community","display":"Community"}],"text":"Community"}],'
        '"medicationCodeableConcept":',
        concept(col("system"), col("code"), col("display")),
        ',"subject":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"authoredOn":"',
        col("authored"),
        '","requester":{"reference":"Practitioner/',
        col("practitioner"),
        '","display":"Dr. ',
        col("practitioner_name"),
        '"}',
        cat(',"reasonCode":[{"coding":[', coding(SNOMED, col("reason_code"), col("reason_display")), "]}]"),
        ',"dosageInstruction":[{"sequence":1,"timing":{"repeat":{"frequency":1,"period":1.0,"periodUnit":"d"}},"asNeededBoolean":false}]',
        ',"dispenseRequest":{"validityPeriod":{"start":"',
        col("start"),
        '"',
        cat(',"end":"', col("end"), '"'),
        "}}}",
    )
    return _lines(frame, expr, m_)


def _procedures(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.p_enc)
    proc, reason, enc = tl.p_proc[rows], tl.p_reason[rows], tl.p_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    start = tl.e_start[enc]
    stop = np.minimum(
        start + chunk.rng.integers(5, 45, len(rows)) * 60, np.maximum(tl.e_stop[enc], start + 300)
    )
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
            **_code_columns(take([p.snomed for p in cat_.procedures], proc), SNOMED, m_),
            "display": json_text(take([p.description for p in cat_.procedures], proc)),
            "start": corrupt_dates(iso_times(start), m_.invalid),
            "end": iso_times(stop),
            "reason_code": take([c.snomed for c in cat_.conditions], reason).replace("", None),
            "reason_display": json_text(take([c.description for c in cat_.conditions], reason)),
        }
    )
    expr = line(
        '{"resourceType":"Procedure","id":"',
        col("id"),
        '",',
        meta("us-core-procedure"),
        ',"status":"completed","code":',
        concept(col("system"), col("code"), col("display")),
        ',"subject":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"performedPeriod":{"start":"',
        col("start"),
        '","end":"',
        col("end"),
        '"}',
        cat(',"reasonCode":[{"coding":[', coding(SNOMED, col("reason_code"), col("reason_display")), "]}]"),
        "}",
    )
    return _lines(frame, expr, m_)


def _observations(chunk: Chunk, view: SiteView) -> Piece:
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
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
            **_code_columns(take([x.loinc for x in cat_.labs], lab), LOINC, m_),
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
    )
    expr = line(
        '{"resourceType":"Observation","id":"',
        col("id"),
        '","meta":{"profile":["',
        col("profile"),
        '"]},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"',
        col("category"),
        '","display":"',
        col("category_display"),
        '"}]}],"code":',
        concept(col("system"), col("code"), col("display")),
        ',"subject":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"effectiveDateTime":"',
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
    )
    return _lines(frame, expr, m_)


def _immunizations(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.i_enc)
    vax, enc = tl.i_vax[rows], tl.i_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
            **_code_columns(take([v.cvx for v in cat_.vaccines], vax), CVX, m_),
            "display": json_text(take([v.description for v in cat_.vaccines], vax)),
            "date": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
        }
    )
    expr = line(
        '{"resourceType":"Immunization","id":"',
        col("id"),
        '",',
        meta("us-core-immunization"),
        ',"status":"completed","vaccineCode":',
        concept(col("system"), col("code"), col("display")),
        ',"patient":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"occurrenceDateTime":"',
        col("date"),
        '","primarySource":true}',
    )
    return _lines(frame, expr, m_)


def _allergies(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.a_enc)
    allergy, enc = tl.a_allergy[rows], tl.a_enc[rows]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    systems = [SNOMED if a.system == "SNOMED-CT" else RXNORM for a in cat_.allergies]
    first_reaction = [a.reactions[0] if a.reactions else (None, None, None) for a in cat_.allergies]
    system = take(systems, allergy)
    codes = localize(take([a.code for a in cat_.allergies], allergy), m_.unmapped, LOCAL_PREFIX)
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
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
    )
    expr = line(
        '{"resourceType":"AllergyIntolerance","id":"',
        col("id"),
        '",',
        meta("us-core-allergyintolerance"),
        ',"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},'
        '"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"confirmed"}]},'
        '"type":"allergy","category":["',
        col("category"),
        '"],"criticality":"low","code":',
        concept(col("system"), col("code"), col("display")),
        ',"patient":{"reference":"Patient/',
        col("patient"),
        '"},"encounter":{"reference":"Encounter/',
        col("encounter"),
        '"},"recordedDate":"',
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
    )
    return _lines(frame, expr, m_)


def _devices(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.d_enc)
    device, enc = tl.d_device[rows], tl.d_enc[rows]
    udi = device_udis(chunk.rng, len(rows))
    frame = pl.DataFrame(
        {
            "id": uuids(chunk.rng, len(rows)),
            **_refs(chunk, view, enc),
            "code": take([d.snomed for d in cat_.devices], device),
            "display": json_text(take([d.description for d in cat_.devices], device)),
            "udi": udi,
            "di": udi.str.slice(4, 14),
            "start": iso_times(tl.e_start[enc]),
        }
    )
    expr = line(
        '{"resourceType":"Device","id":"',
        col("id"),
        '",',
        meta("us-core-implantable-device"),
        ',"udiCarrier":[{"deviceIdentifier":"',
        col("di"),
        '","carrierHRF":"',
        col("udi"),
        '"}],"status":"active","manufactureDate":"',
        col("start"),
        '","type":',
        concept(SNOMED, col("code"), col("display")),
        ',"patient":{"reference":"Patient/',
        col("patient"),
        '"}}',
    )
    return _lines(frame, expr, no_masks(len(rows)))


def _reference(chunk: Chunk) -> dict[str, Piece]:
    site = chunk.reference.sites[1]
    places = chunk.names.places
    orgs = pl.DataFrame(
        {
            "id": site.org_ids,
            "name": json_text(pl.Series(site.org_names)),
            "phone": site.org_phones,
            "street": json_text(pl.Series(site.org_streets)),
            "city": [places[i].city for i in site.org_places],
            "state": [places[i].state for i in site.org_places],
            "zip": [places[i].zip for i in site.org_places],
            "kind": ["prov"] * len(site.org_ids),
        }
    )
    org_expr = line(
        '{"resourceType":"Organization","id":"',
        col("id"),
        '",',
        meta("us-core-organization"),
        ',"identifier":[{"system":"https://github.com/synthetichealth/synthea","value":"',
        col("id"),
        '"}],"active":true,"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/organization-type","code":"prov","display":"Healthcare Provider"}],"text":"Healthcare Provider"}],"name":"',
        col("name"),
        '","telecom":[{"system":"phone","value":"',
        col("phone"),
        '"}],"address":[{"line":["',
        col("street"),
        '"],"city":"',
        col("city"),
        '","state":"',
        col("state"),
        '","postalCode":"',
        col("zip"),
        '","country":"US"}]}',
    )
    first, _, last = np.char.partition(site.provider_names, " ").T
    practitioners = pl.DataFrame(
        {
            "id": site.provider_ids,
            "npi": site.provider_npi,
            "given": json_text(pl.Series(first)),
            "family": json_text(pl.Series(last)),
            "gender": np.where(site.provider_gender == "F", "female", "male"),
        }
    )
    practitioner_expr = line(
        '{"resourceType":"Practitioner","id":"',
        col("id"),
        '",',
        meta("us-core-practitioner"),
        ',"identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"',
        col("npi"),
        '"}],"active":true,"name":[{"family":"',
        col("family"),
        '","given":["',
        col("given"),
        '"],"prefix":["Dr."]}],"gender":"',
        col("gender"),
        '"}',
    )
    return {
        "Organization": _lines(orgs, org_expr, no_masks(orgs.height)),
        "Practitioner": _lines(practitioners, practitioner_expr, no_masks(practitioners.height)),
    }
