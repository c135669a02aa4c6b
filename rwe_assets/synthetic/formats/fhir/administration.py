"""FHIR Base/Administration resources of site B: Patient, Encounter, Device, and the Organization
and Practitioner resources encounters refer to (written once per batch)."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    corrupt_dates,
    json_text,
    masks,
    no_masks,
    optional,
)
from rwe_assets.synthetic.formats.ehr import SiteView, device_udis
from rwe_assets.synthetic.formats.fhir.template import (
    SNOMED,
    cat,
    col,
    concept,
    event_lines,
    head,
    line,
    reason_code,
    resource_lines,
)
from rwe_assets.synthetic.util import DAY_END, YEAR, fixed, iso_dates, iso_times, take


def patients(chunk: Chunk, view: SiteView) -> Piece:
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
        head("Patient", "us-core-patient"),
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
    return resource_lines(frame, expr, no_masks(m))


def encounters(chunk: Chunk, view: SiteView) -> Piece:
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
        head("Encounter", "us-core-encounter"),
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
        reason_code(),
        ',"serviceProvider":{"reference":"Organization/',
        col("org"),
        '","display":"',
        col("org_name"),
        '"}}',
    )
    return resource_lines(frame, expr, m_)


def devices(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat_ = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.d_enc)
    device, enc = tl.d_device[rows], tl.d_enc[rows]
    udi = device_udis(chunk.rng, len(rows))
    columns = {
        "code": take([d.snomed for d in cat_.devices], device),
        "display": json_text(take([d.description for d in cat_.devices], device)),
        "udi": udi,
        "di": udi.str.slice(4, 14),
        "start": iso_times(tl.e_start[enc]),
    }
    expr = line(
        head("Device", "us-core-implantable-device"),
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
    return event_lines(chunk, view, enc, no_masks(len(rows)), columns, expr)


def organizations_and_practitioners(chunk: Chunk) -> dict[str, Piece]:
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
        head("Organization", "us-core-organization"),
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
        head("Practitioner", "us-core-practitioner"),
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
        "Organization": resource_lines(orgs, org_expr, no_masks(orgs.height)),
        "Practitioner": resource_lines(practitioners, practitioner_expr, no_masks(practitioners.height)),
    }
