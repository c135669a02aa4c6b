"""What happens at each kind of encounter: vital signs, screenings, panels, vaccines and drug
renewals at wellness visits; panels and orders at diagnosis and follow-up visits; the episode's
condition, procedures and drugs at acute visits; stays, cancer work-up, chemotherapy and the cause
of death. fill.py calls these in a fixed order (the order of the random draws)."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.clinical.content import Content, Visits
from rwe_assets.synthetic.clinical.medications import orders
from rwe_assets.synthetic.clinical.timeline import Kind
from rwe_assets.synthetic.util import DAY_END, SECONDS_PER_DAY


def _findings(c: Content, v: Visits, w: np.ndarray) -> None:
    """Findings (one-year conditions) recorded at some wellness visits, by age band."""
    for cond in c.catalogue.of_kind("finding"):
        chosen = w[
            (v.age[w] >= cond.ages[0])
            & (v.age[w] < cond.ages[1])
            & (c.rng.random(len(w)) < cond.probability[0])
            & v.ehr[w]
        ]
        stop_day = np.minimum(v.day[chosen] + 365, v.hi[chosen])
        stop_day = np.where(stop_day >= DAY_END, -1, stop_day)
        c.emit("cond", enc=chosen, cond=cond.index, start=v.day[chosen], stop=stop_day)


def _screenings(c: Content, v: Visits, w: np.ndarray) -> None:
    rng, age, sex = c.rng, v.age, v.sex
    screened = w[(age[w] >= 12) & (rng.random(len(w)) < 0.5)]
    c.procedure(screened, "depression_screening")
    c.procedure(screened, "phq2_screening")
    c.emit("obs", enc=screened, lab=c.catalogue.lab("phq2_score").index, value=np.nan, text=-1)
    c.procedure(w[(age[w] >= 18) & (rng.random(len(w)) < 0.4)], "care_needs_assessment")
    c.procedure(w[(age[w] >= 14) & (rng.random(len(w)) < 0.3)], "substance_use_assessment")
    c.procedure(
        w[(sex[w] == 1) & (age[w] >= 50) & (age[w] < 75) & (rng.random(len(w)) < 0.45)], "mammography"
    )
    c.procedure(w[(age[w] >= 50) & (rng.random(len(w)) < 0.07)], "colonoscopy")


def _wellness_panels(c: Content, v: Visits, w: np.ndarray) -> None:
    """Screening panels by age, more often when an active condition calls for the panel."""
    for key, (min_age, probability) in c.catalogue.wellness_panels.items():
        needed = np.zeros(len(w), dtype=bool)
        for cond in c.catalogue.of_kind("chronic"):
            if key in cond.panels:
                needed |= v.active[cond.index][w]
        chosen = w[
            (v.age[w] >= min_age)
            & ((c.rng.random(len(w)) < probability) | (needed & (c.rng.random(len(w)) < 0.5)))
        ]
        c.panel(chosen, key)


def _vaccines(c: Content, v: Visits, w: np.ndarray) -> None:
    rng, age, day, person = c.rng, v.age, v.day, v.person
    for vax in c.catalogue.vaccines:
        if vax.schedule == "yearly":
            rows = w[(age[w] >= vax.min_age) & (rng.random(len(w)) < vax.probability)]
        elif vax.schedule == "ages":
            rows = w[
                np.isin(np.floor(age[w]).astype(np.int64), vax.ages) & (rng.random(len(w)) < vax.probability)
            ]
        else:
            eligible = w[age[w] >= vax.min_age]
            if vax.until_day is not None:
                eligible = eligible[day[eligible] <= vax.until_day]
            # the first eligible wellness visit of each person
            first = (
                eligible[np.r_[True, person[eligible][1:] != person[eligible][:-1]]]
                if len(eligible)
                else eligible
            )
            rows = first[rng.random(len(first)) < vax.probability]
        c.emit("imm", enc=rows, vax=vax.index)


def wellness(c: Content, v: Visits) -> None:
    cat, persons = c.catalogue, c.persons
    w = np.flatnonzero(v.kind == Kind.WELLNESS)
    c.panel(w, "vitals")
    smokers = w[v.age[w] >= 15]
    c.emit(
        "obs",
        enc=smokers,
        lab=cat.lab("tobacco_status").index,
        value=0.0,
        text=persons.smoker[v.person[smokers]],
    )
    _findings(c, v, w)
    _screenings(c, v, w)
    on_drugs = np.zeros(len(v.person), dtype=bool)
    for cond in cat.of_kind("chronic", "cancer"):
        if cond.drugs:
            on_drugs |= v.active[cond.index]
    c.procedure(w[on_drugs[w]], "medication_reconciliation")
    _wellness_panels(c, v, w)
    _vaccines(c, v, w)
    # drug renewals for every active chronic condition
    for cond in cat.of_kind("chronic"):
        if cond.drugs:
            orders(c, v, w[v.active[cond.index][w] & v.ehr[w]], cond)


def diagnosis(c: Content, v: Visits) -> None:
    for cond in c.catalogue.of_kind("chronic"):
        rows = np.flatnonzero((v.kind == Kind.DIAGNOSIS) & (v.reason == cond.index))
        for key in cond.panels:
            c.panel(rows, key)
        orders(c, v, rows[v.ehr[rows]], cond)


def followup(c: Content, v: Visits) -> None:
    f = np.flatnonzero(v.kind == Kind.FOLLOWUP)
    c.panel(f, "bp")
    for cond in c.catalogue.of_kind("chronic", "cancer"):
        rows = f[v.reason[f] == cond.index]
        for key in cond.panels:
            c.panel(rows[c.rng.random(len(rows)) < 0.6], key)
        for proc, probability in cond.procedures:
            c.emit("proc", enc=rows[c.rng.random(len(rows)) < probability], proc=proc, reason=cond.index)


def _acute_drugs(c: Content, v: Visits, rows: np.ndarray, cond) -> None:
    """A course of one of the episode's drugs: an order at an EHR site, a fill when claimable."""
    treated = rows[c.rng.random(len(rows)) < cond.drug_probability]
    if not (cond.drugs and len(treated)):
        return
    drug = np.array(cond.drugs)[c.rng.integers(0, len(cond.drugs), len(treated))]
    course = cond.course_days * SECONDS_PER_DAY
    ehr_rows = v.ehr[treated]
    start = v.start[treated][ehr_rows]
    c.emit(
        "med",
        enc=treated[ehr_rows],
        drug=drug[ehr_rows],
        start=start,
        stop=start + course,
        reason=cond.index,
        dispenses=1,
    )
    c.emit(
        "fill",
        person=v.person[treated],
        drug=drug,
        day=v.day[treated],
        record=v.claim_record[treated],
        ok=v.claim[treated],
    )


def acute(c: Content, v: Visits) -> None:
    """Acute episodes (office, urgent care or emergency)."""
    for cond in c.catalogue.of_kind("acute"):
        rows = np.flatnonzero(
            ((v.kind == Kind.ACUTE) | (v.kind == Kind.EMERGENCY)) & (v.reason == cond.index)
        )
        length = c.rng.integers(cond.days[0], cond.days[1] + 1, len(rows))
        stop_day = np.minimum(v.day[rows] + length, v.hi[rows])
        stop_day = np.where(stop_day >= DAY_END, -1, stop_day)
        ehr = v.ehr[rows]
        c.emit("cond", enc=rows[ehr], cond=cond.index, start=v.day[rows][ehr], stop=stop_day[ehr])
        if cond.encounter == "symptom":
            c.panel(rows[c.rng.random(len(rows)) < 0.5], "fever")
        for proc, probability in cond.procedures:
            c.emit("proc", enc=rows[c.rng.random(len(rows)) < probability], proc=proc, reason=cond.index)
        _acute_drugs(c, v, rows, cond)


def hospital_events(c: Content, v: Visits) -> None:
    """The emergency visit's condition and panels; the stay's panels, procedures and devices."""
    cat = c.catalogue
    for cond in cat.of_kind("event"):
        er = np.flatnonzero((v.kind == Kind.EMERGENCY) & (v.reason == cond.index))
        stay = np.flatnonzero((v.kind == Kind.INPATIENT) & (v.reason == cond.index))
        held = er[v.ehr[er]]
        c.emit(
            "cond",
            enc=held,
            cond=cond.index,
            start=v.day[held],
            stop=np.minimum(v.day[held] + 28, v.hi[held]),
        )
        c.panel(er, "fever")
        c.panel(stay, "bmp")
        c.panel(stay, "cbc")
        for proc, probability in cond.procedures:
            chosen = stay[c.rng.random(len(stay)) < probability]
            c.emit("proc", enc=chosen, proc=proc, reason=cond.index)
            device = cat.procedures[proc].device
            if device is not None:
                c.emit("device", enc=chosen[v.ehr[chosen]], device=device)


def cancer(c: Content, v: Visits) -> None:
    """Screening, work-up and chemotherapy (procedure and drugs) of each cancer."""
    for cond in c.catalogue.of_kind("cancer"):
        screen = np.flatnonzero((v.kind == Kind.SCREENING) & (v.reason == cond.index))
        if cond.screening is not None:
            c.emit("proc", enc=screen, proc=cond.screening, reason=-1)
        dx = np.flatnonzero((v.kind == Kind.CANCER_DX) & (v.reason == cond.index))
        for proc in cond.workup:
            c.emit("proc", enc=dx, proc=proc, reason=cond.index)
        c.panel(dx, "cbc")
        chemo = np.flatnonzero((v.kind == Kind.CHEMO) & (v.reason == cond.index))
        c.procedure(chemo, "chemotherapy", cond.index)
        rows = chemo[v.ehr[chemo]]
        for drug in cond.chemotherapy:
            c.emit(
                "med",
                enc=rows,
                drug=drug,
                start=v.start[rows],
                stop=v.stop[rows],
                reason=cond.index,
                dispenses=1,
            )


def death(c: Content, v: Visits) -> None:
    """The cause of death (an index into timeline.text_table) at the death certification."""
    d = np.flatnonzero(v.kind == Kind.DEATH)
    n_conditions = len(c.catalogue.conditions)
    cause = np.where(v.reason[d] >= 0, 3 + v.reason[d], 3 + n_conditions)
    c.emit("obs", enc=d, lab=c.catalogue.lab("cause_of_death").index, value=0.0, text=cause)
