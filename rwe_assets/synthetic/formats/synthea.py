"""EHR site A: a Synthea v3 CSV export (one file per entity, Synthea's column layout and formats:
dates YYYY-MM-DD for conditions, allergies and birth dates, YYYY-MM-DDTHH:MM:SSZ elsewhere)."""

from __future__ import annotations

import numpy as np
import polars as pl

from rwe_assets.synthetic.formats.common import (
    Chunk,
    Piece,
    columns_frame,
    corrupt_dates,
    localize,
    masks,
    no_masks,
    render_csv,
)
from rwe_assets.synthetic.formats.ehr import (
    SiteView,
    device_udis,
    encounter_costs,
    observation_values,
    site_view,
)
from rwe_assets.synthetic.membership import month_first_day, month_last_day
from rwe_assets.synthetic.reference import PAYERS
from rwe_assets.synthetic.util import (
    DAY_END,
    SECONDS_PER_DAY,
    fixed,
    integers,
    iso_dates,
    iso_times,
    money,
    take,
    uuids,
)

SOURCE = "ehr_site_a"
LOCAL_PREFIX = "SA"  # site A's local codes: SA + 6 digits
HEADERS: dict[str, list[str]] = {
    "patients": "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE",
    "encounters": "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION",
    "conditions": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION",
    "medications": "START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,PAYER_COVERAGE,DISPENSES,TOTALCOST,REASONCODE,REASONDESCRIPTION",
    "procedures": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST,REASONCODE,REASONDESCRIPTION",
    "observations": "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE",
    "immunizations": "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST",
    "allergies": "START,STOP,PATIENT,ENCOUNTER,CODE,SYSTEM,DESCRIPTION,TYPE,CATEGORY,REACTION1,DESCRIPTION1,SEVERITY1,REACTION2,DESCRIPTION2,SEVERITY2",
    "devices": "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,UDI",
    "organizations": "Id,NAME,ADDRESS,CITY,STATE,ZIP,LAT,LON,PHONE,REVENUE,UTILIZATION",
    "providers": "Id,ORGANIZATION,NAME,GENDER,SPECIALITY,ADDRESS,CITY,STATE,ZIP,LAT,LON,UTILIZATION",
    "payers": "Id,NAME,ADDRESS,CITY,STATE_HEADQUARTERED,ZIP,PHONE,AMOUNT_COVERED,AMOUNT_UNCOVERED,REVENUE,COVERED_ENCOUNTERS,UNCOVERED_ENCOUNTERS,COVERED_MEDICATIONS,UNCOVERED_MEDICATIONS,COVERED_PROCEDURES,UNCOVERED_PROCEDURES,COVERED_IMMUNIZATIONS,UNCOVERED_IMMUNIZATIONS,UNIQUE_CUSTOMERS,QOLS_AVG,MEMBER_MONTHS",
    "payer_transitions": "PATIENT,MEMBERID,START_YEAR,END_YEAR,PAYER,SECONDARY_PAYER,OWNERSHIP,OWNERNAME",
    "careplans": "Id,START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,REASONCODE,REASONDESCRIPTION",
    "claims": "Id,PATIENTID,PROVIDERID,PRIMARYPATIENTINSURANCEID,SECONDARYPATIENTINSURANCEID,DEPARTMENTID,PATIENTDEPARTMENTID,DIAGNOSIS1,DIAGNOSIS2,DIAGNOSIS3,DIAGNOSIS4,DIAGNOSIS5,DIAGNOSIS6,DIAGNOSIS7,DIAGNOSIS8,REFERRINGPROVIDERID,APPOINTMENTID,CURRENTILLNESSDATE,SERVICEDATE,SUPERVISINGPROVIDERID,STATUS1,STATUS2,STATUSP,OUTSTANDING1,OUTSTANDING2,OUTSTANDINGP,LASTBILLEDDATE1,LASTBILLEDDATE2,LASTBILLEDDATEP,HEALTHCARECLAIMTYPEID1,HEALTHCARECLAIMTYPEID2",
    "claims_transactions": "ID,CLAIMID,CHARGEID,PATIENTID,TYPE,AMOUNT,METHOD,FROMDATE,TODATE,PLACEOFSERVICE,PROCEDURECODE,MODIFIER1,MODIFIER2,DIAGNOSISREF1,DIAGNOSISREF2,DIAGNOSISREF3,DIAGNOSISREF4,UNITS,DEPARTMENTID,NOTES,UNITAMOUNT,TRANSFEROUTID,TRANSFERTYPE,PAYMENTS,ADJUSTMENTS,TRANSFERS,OUTSTANDING,APPOINTMENTID,LINENOTE,PATIENTINSURANCEID,FEESCHEDULEID,PROVIDERID,SUPERVISINGPROVIDERID",
    "imaging_studies": "Id,DATE,PATIENT,ENCOUNTER,SERIES_UID,BODYSITE_CODE,BODYSITE_DESCRIPTION,MODALITY_CODE,MODALITY_DESCRIPTION,INSTANCE_UID,SOP_CODE,SOP_DESCRIPTION,PROCEDURE_CODE",
    "supplies": "DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,QUANTITY",
}
HEADERS = {entity: line.split(",") for entity, line in HEADERS.items()}
# Synthea v3 files the generator has nothing to put in: written with their header alone
EMPTY = ("careplans", "claims", "claims_transactions", "imaging_studies", "supplies")
RACE_NAMES = ("white", "black", "asian", "native", "hawaiian", "other")


def file_name(entity: str, compress: bool) -> str:
    return f"{entity}.csv.gz" if compress else f"{entity}.csv"


def synthea_text(values: pl.Series) -> pl.Series:
    """Text as Synthea's CSV exporter writes it (CSVExporter.clean): each line break or comma
    becomes a space, then the ends are trimmed. Synthea never quotes a field. (_frame applies it to
    the columns holding a comma or line break; the generator writes no other padded text.)"""
    return values.str.replace_all(r"\r\n|\r|\n|,", " ").str.strip_chars()


def _frame(entity: str, columns: dict[str, pl.Series | str]) -> pl.DataFrame:
    height = max(len(v) for v in columns.values() if isinstance(v, pl.Series))
    frame = columns_frame(HEADERS[entity], columns, height)
    # only the columns that hold a comma or line break (the scan, all columns in parallel, is ~6x
    # cheaper than the rewrite)
    found = frame.select(pl.col(pl.String).str.contains_any([",", "\r", "\n"]).any()).row(0, named=True)
    dirty = [c for c, hit in found.items() if hit]
    return frame.with_columns(synthea_text(frame[c]) for c in dirty) if dirty else frame


def _csv(frame: pl.DataFrame, m_) -> Piece:
    return render_csv(frame, m_, quote_style="never")


def render(chunk: Chunk) -> dict[str, Piece]:
    view = site_view(chunk, 0, SOURCE)
    out = {
        "patients": _patients(chunk, view),
        "encounters": _encounters(chunk, view),
        "conditions": _conditions(chunk, view),
        "medications": _medications(chunk, view),
        "procedures": _procedures(chunk, view),
        "observations": _observations(chunk, view),
        "immunizations": _immunizations(chunk, view),
        "allergies": _allergies(chunk, view),
        "devices": _devices(chunk, view),
        "payer_transitions": _payer_transitions(chunk, view),
    }
    if chunk.first_in_batch:
        out.update(reference_tables(chunk))
        out.update({entity: Piece(b"", 0) for entity in EMPTY})
    return {entity: piece for entity, piece in out.items() if piece is not None}


def _patients(chunk: Chunk, view: SiteView) -> Piece:
    r = view.records
    p = chunk.persons.take(r.person)
    places = chunk.names.places
    city = take([pl.city for pl in places], r.place)
    state_name = take([pl.state_name for pl in places], r.place)
    rng = chunk.rng
    m = len(r.person)
    adult = (DAY_END - p.birth) / 365.25 >= 18
    prefix = np.where(adult, np.where(p.sex == 0, "Mr.", np.where(p.marital == "M", "Mrs.", "Ms.")), "")
    maiden = np.where((p.sex == 1) & (p.birth_surname != r.last), p.birth_surname, "")
    lat = np.array([pl.lat for pl in places])[r.place] + rng.normal(0, 0.02, m)
    lon = np.array([pl.lon for pl in places])[r.place] + rng.normal(0, 0.02, m)
    birthplace = np.array([f"{pl.city} {pl.state_name} US" for pl in places])[rng.integers(0, len(places), m)]
    frame = _frame(
        "patients",
        {
            "Id": r.ids,
            "BIRTHDATE": iso_dates(r.birth),
            "DEATHDATE": iso_dates(p.death),
            "SSN": pl.Series(r.ssn),
            "DRIVERS": pl.Series(p.drivers),
            "PASSPORT": pl.Series(p.passport),
            "PREFIX": pl.Series(prefix),
            "FIRST": pl.Series(r.first),
            "LAST": pl.Series(r.last),
            "MAIDEN": pl.Series(maiden),
            "MARITAL": pl.Series(p.marital),
            "RACE": take(RACE_NAMES, p.race),
            "ETHNICITY": pl.Series(np.where(p.hispanic, "hispanic", "nonhispanic")),
            "GENDER": pl.Series(np.where(p.sex == 1, "F", "M")),
            "BIRTHPLACE": pl.Series(birthplace),
            "ADDRESS": pl.Series(r.street),
            "CITY": city,
            "STATE": state_name,
            "COUNTY": take([pl.county for pl in places], r.place),
            "ZIP": take([pl.zip for pl in places], r.place),
            "LAT": fixed(lat, 6),
            "LON": fixed(lon, 6),
            "HEALTHCARE_EXPENSES": money(rng.gamma(2.0, 60_000.0, m)),
            "HEALTHCARE_COVERAGE": money(rng.gamma(1.5, 9_000.0, m)),
        },
    )
    return _csv(frame, no_masks(m))


def _encounters(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    enc = view.enc
    base, total, covered = encounter_costs(chunk, view)
    site = view.site
    reason = tl.e_reason[enc]
    etype = tl.e_type[enc]
    m_ = masks(chunk.rng, len(enc), chunk.config, codes=False)
    start = corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid)
    frame = _frame(
        "encounters",
        {
            "Id": chunk.encounter_ids.gather(enc),
            "START": start,
            "STOP": iso_times(tl.e_stop[enc]),
            "PATIENT": view.records.ids.gather(view.patient),
            "ORGANIZATION": pl.Series(site.org_ids[view.org]),
            "PROVIDER": pl.Series(site.provider_ids[view.provider]),
            "PAYER": pl.Series(chunk.reference.payer_ids[view.payer]),
            "ENCOUNTERCLASS": take([e.encounter_class for e in cat.encounter_types], etype),
            "CODE": take([e.snomed for e in cat.encounter_types], etype),
            "DESCRIPTION": take([e.description for e in cat.encounter_types], etype),
            "BASE_ENCOUNTER_COST": money(base),
            "TOTAL_CLAIM_COST": money(total),
            "PAYER_COVERAGE": money(covered),
            "REASONCODE": take([c.snomed for c in cat.conditions], reason),
            "REASONDESCRIPTION": take([c.description for c in cat.conditions], reason),
        },
    )
    return _csv(frame, m_)


def _codes(chunk, frame_codes: pl.Series, m_) -> pl.Series:
    return localize(frame_codes, m_.unmapped, LOCAL_PREFIX)


def _conditions(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.c_enc)
    enc, cond = tl.c_enc[rows], tl.c_cond[rows]
    pos = view.position[enc]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = _frame(
        "conditions",
        {
            "START": corrupt_dates(iso_dates(tl.c_start[rows]), m_.invalid),
            "STOP": iso_dates(np.where(tl.c_stop[rows] < 0, -(10**9), tl.c_stop[rows])),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": _codes(chunk, take([c.snomed for c in cat.conditions], cond), m_),
            "DESCRIPTION": take([c.description for c in cat.conditions], cond),
        },
    )
    return _csv(frame, m_)


def _medications(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.m_enc)
    enc, drug = tl.m_enc[rows], tl.m_drug[rows]
    pos = view.position[enc]
    cost = np.array([d.cost for d in cat.drugs])[drug]
    dispenses = tl.m_dispenses[rows]
    covered = np.where(view.payer[pos] == 4, 0.0, cost * 0.8)
    m_ = masks(chunk.rng, len(rows), chunk.config)
    reason = tl.m_reason[rows]
    frame = _frame(
        "medications",
        {
            "START": corrupt_dates(iso_times(tl.m_start[rows]), m_.invalid),
            "STOP": iso_times(tl.m_stop[rows]),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "PAYER": pl.Series(chunk.reference.payer_ids[view.payer[pos]]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": _codes(chunk, take([d.rxnorm for d in cat.drugs], drug), m_),
            "DESCRIPTION": take([d.description for d in cat.drugs], drug),
            "BASE_COST": money(cost),
            "PAYER_COVERAGE": money(covered),
            "DISPENSES": integers(dispenses),
            "TOTALCOST": money(cost * dispenses),
            "REASONCODE": take([c.snomed for c in cat.conditions], reason),
            "REASONDESCRIPTION": take([c.description for c in cat.conditions], reason),
        },
    )
    return _csv(frame, m_)


def _procedures(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.p_enc)
    enc, proc = tl.p_enc[rows], tl.p_proc[rows]
    pos = view.position[enc]
    reason = tl.p_reason[rows]
    start = tl.e_start[enc]
    stop = np.minimum(
        start + chunk.rng.integers(5, 45, len(rows)) * 60, np.maximum(tl.e_stop[enc], start + 300)
    )
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = _frame(
        "procedures",
        {
            "START": corrupt_dates(iso_times(start), m_.invalid),
            "STOP": iso_times(stop),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": _codes(chunk, take([p.snomed for p in cat.procedures], proc), m_),
            "DESCRIPTION": take([p.description for p in cat.procedures], proc),
            "BASE_COST": money(np.array([p.cost for p in cat.procedures])[proc]),
            "REASONCODE": take([c.snomed for c in cat.conditions], reason),
            "REASONDESCRIPTION": take([c.description for c in cat.conditions], reason),
        },
    )
    return _csv(frame, m_)


def _observations(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.o_enc)
    enc, lab = tl.o_enc[rows], tl.o_lab[rows]
    pos = view.position[enc]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = _frame(
        "observations",
        {
            "DATE": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CATEGORY": take([lab_.category for lab_ in cat.labs], lab),
            "CODE": _codes(chunk, take([lab_.loinc for lab_ in cat.labs], lab), m_),
            "DESCRIPTION": take([lab_.description for lab_ in cat.labs], lab),
            "VALUE": observation_values(chunk, rows),
            "UNITS": take([lab_.units for lab_ in cat.labs], lab),
            "TYPE": pl.Series(np.where(tl.o_text[rows] >= 0, "text", "numeric")),
        },
    )
    return _csv(frame, m_)


def _immunizations(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.i_enc)
    enc, vax = tl.i_enc[rows], tl.i_vax[rows]
    pos = view.position[enc]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = _frame(
        "immunizations",
        {
            "DATE": corrupt_dates(iso_times(tl.e_start[enc]), m_.invalid),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": _codes(chunk, take([v.cvx for v in cat.vaccines], vax), m_),
            "DESCRIPTION": take([v.description for v in cat.vaccines], vax),
            "BASE_COST": pl.repeat("140.52", len(rows), eager=True),
        },
    )
    return _csv(frame, m_)


def _allergies(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.a_enc)
    enc, allergy = tl.a_enc[rows], tl.a_allergy[rows]
    pos = view.position[enc]
    reactions = [a.reactions + (("", "", ""),) * (2 - len(a.reactions)) for a in cat.allergies]
    m_ = masks(chunk.rng, len(rows), chunk.config)
    frame = _frame(
        "allergies",
        {
            "START": corrupt_dates(iso_dates(tl.a_start[rows]), m_.invalid),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": _codes(chunk, take([a.code for a in cat.allergies], allergy), m_),
            "SYSTEM": take([a.system for a in cat.allergies], allergy),
            "DESCRIPTION": take([a.description for a in cat.allergies], allergy),
            "TYPE": pl.repeat("allergy", len(rows), eager=True),
            "CATEGORY": take([a.category for a in cat.allergies], allergy),
            "REACTION1": take([r[0][0] for r in reactions], allergy),
            "DESCRIPTION1": take([r[0][1] for r in reactions], allergy),
            "SEVERITY1": take([r[0][2] for r in reactions], allergy),
            "REACTION2": take([r[1][0] for r in reactions], allergy),
            "DESCRIPTION2": take([r[1][1] for r in reactions], allergy),
            "SEVERITY2": take([r[1][2] for r in reactions], allergy),
        },
    )
    return _csv(frame, m_)


def _devices(chunk: Chunk, view: SiteView) -> Piece:
    tl, cat = chunk.timeline, chunk.catalogue
    rows = view.rows(tl.d_enc)
    enc, device = tl.d_enc[rows], tl.d_device[rows]
    pos = view.position[enc]
    frame = _frame(
        "devices",
        {
            "START": iso_times(tl.e_start[enc]),
            "PATIENT": view.records.ids.gather(view.patient[pos]),
            "ENCOUNTER": chunk.encounter_ids.gather(enc),
            "CODE": take([d.snomed for d in cat.devices], device),
            "DESCRIPTION": take([d.description for d in cat.devices], device),
            "UDI": device_udis(chunk.rng, len(rows)),
        },
    )
    return _csv(frame, no_masks(len(rows)))


def _payer_transitions(chunk: Chunk, view: SiteView) -> Piece:
    """Enrollment spans at the payer of site A's patients who are its members (main record)."""
    r, ms = view.records, chunk.membership
    main = np.flatnonzero((r.dup == 0) & ms.in_payer[r.person])
    person = r.person[main]
    starts = ms.span_start[person]
    owner, k = np.nonzero(starts >= 0)
    span_start = month_first_day(starts[owner, k]) * SECONDS_PER_DAY
    span_end = np.minimum(month_last_day(ms.span_end[person][owner, k]), DAY_END) * SECONDS_PER_DAY
    frame = _frame(
        "payer_transitions",
        {
            "PATIENT": r.ids.gather(main[owner]),
            "MEMBERID": pl.Series(uuids(chunk.rng, len(owner))),
            "START_YEAR": iso_times(span_start),
            "END_YEAR": iso_times(span_end),
            "PAYER": pl.Series(np.full(len(owner), chunk.reference.payer_ids[0])),
            "OWNERSHIP": pl.repeat("Self", len(owner), eager=True),
            "OWNERNAME": pl.Series(np.char.add(np.char.add(r.first[main][owner], " "), r.last[main][owner])),
        },
    )
    return _csv(frame, no_masks(len(owner)))


def reference_tables(chunk: Chunk) -> dict[str, Piece]:
    site = chunk.reference.sites[0]
    places = chunk.names.places
    org_place = site.org_places
    orgs = _frame(
        "organizations",
        {
            "Id": pl.Series(site.org_ids),
            "NAME": pl.Series(site.org_names),
            "ADDRESS": pl.Series(site.org_streets),
            "CITY": pl.Series([places[i].city.upper() for i in org_place]),
            "STATE": pl.Series([places[i].state for i in org_place]),
            "ZIP": pl.Series([places[i].zip for i in org_place]),
            "LAT": fixed(np.array([places[i].lat for i in org_place]), 6),
            "LON": fixed(np.array([places[i].lon for i in org_place]), 6),
            "PHONE": pl.Series(site.org_phones),
            "REVENUE": pl.repeat("0.0", len(org_place), eager=True),
            "UTILIZATION": pl.repeat("0", len(org_place), eager=True),
        },
    )
    prov_place = org_place[site.provider_org]
    providers = _frame(
        "providers",
        {
            "Id": pl.Series(site.provider_ids),
            "ORGANIZATION": pl.Series(site.org_ids[site.provider_org]),
            "NAME": pl.Series(site.provider_names),
            "GENDER": pl.Series(site.provider_gender),
            "SPECIALITY": pl.Series(site.provider_specialty),
            "ADDRESS": pl.Series(site.org_streets[site.provider_org]),
            "CITY": pl.Series([places[i].city.upper() for i in prov_place]),
            "STATE": pl.Series([places[i].state for i in prov_place]),
            "ZIP": pl.Series([places[i].zip for i in prov_place]),
            "LAT": fixed(np.array([places[i].lat for i in prov_place]), 6),
            "LON": fixed(np.array([places[i].lon for i in prov_place]), 6),
            "UTILIZATION": pl.repeat("0", len(prov_place), eager=True),
        },
    )
    k = len(PAYERS)
    zero = pl.repeat("0", k, eager=True)
    payers = _frame(
        "payers",
        {
            "Id": pl.Series(chunk.reference.payer_ids),
            "NAME": pl.Series([p[0] for p in PAYERS]),
            "ADDRESS": pl.Series([p[1] for p in PAYERS]),
            "CITY": pl.Series([p[2] for p in PAYERS]),
            "STATE_HEADQUARTERED": pl.Series([p[3] for p in PAYERS]),
            "ZIP": pl.Series([p[4] for p in PAYERS]),
            "PHONE": pl.Series([p[5] for p in PAYERS]),
            "AMOUNT_COVERED": pl.repeat("0.00", k, eager=True),
            "AMOUNT_UNCOVERED": pl.repeat("0.00", k, eager=True),
            "REVENUE": pl.repeat("0.00", k, eager=True),
            **{name: zero for name in HEADERS["payers"][10:19]},
            "QOLS_AVG": pl.repeat("0.0", k, eager=True),
            "MEMBER_MONTHS": zero,
        },
    )
    return {
        "organizations": _csv(orgs, no_masks(orgs.height)),
        "providers": _csv(providers, no_masks(providers.height)),
        "payers": _csv(payers, no_masks(payers.height)),
    }
