"""Observation rows and their values: each lab panel drawn at an EHR encounter expands into one
result per analyte, beside the directly recorded observations (smoking status, PHQ-2, cause of
death). Values come from normal or condition ranges, clipped; height, weight and BMI from the
person's growth and BMI."""

from __future__ import annotations

import numpy as np

from rwe_assets.synthetic.clinical.content import Content, Visits
from rwe_assets.synthetic.util import expand


def _rows(c: Content, pan: dict[str, np.ndarray], direct: dict[str, np.ndarray], site: np.ndarray):
    """(encounter, lab, text) of every observation at an EHR site, sorted by encounter (stable)."""
    panels = c.catalogue.panels
    ehr_panels = site[pan["enc"]] >= 0
    enc_ids, panel_ids = pan["enc"][ehr_panels], pan["panel"][ehr_panels]
    sizes = np.array([len(p.labs) for p in panels])[panel_ids]
    owner, k = expand(sizes)
    flat_labs = np.concatenate([np.array(p.labs, dtype=np.int64) for p in panels])
    first_lab = np.cumsum([0] + [len(p.labs) for p in panels])[:-1]
    obs_enc = enc_ids[owner]
    obs_lab = flat_labs[first_lab[panel_ids[owner]] + k]
    ehr_direct = site[direct["enc"]] >= 0
    enc_all = np.concatenate([obs_enc, direct["enc"][ehr_direct]])
    lab_all = np.concatenate([obs_lab, direct["lab"][ehr_direct].astype(np.int64)])
    text_all = np.concatenate(
        [np.full(len(obs_enc), -1, dtype=np.int64), direct["text"][ehr_direct].astype(np.int64)]
    )
    order = np.argsort(enc_all, kind="stable")
    return enc_all[order], lab_all[order], text_all[order]


def _body_measures(c: Content, p: np.ndarray, d: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
    """Height growing with age, weight from a personal BMI that rises after obesity onset."""
    rng, persons, prep = c.rng, c.persons, c.prepared
    growth = np.clip(0.30 + 0.70 * np.clip(a, 0, 18) / 18.0, 0.3, 1.0)
    height = persons.height[p] * growth + rng.normal(0, 0.4, len(p))
    obese = prep.onset[p, c.catalogue.condition("obesity").index] <= d
    bmi_adult = np.where(obese, prep.obese_bmi[p], persons.bmi[p])
    bmi = np.where(a >= 18, bmi_adult, 15.5 + 0.2 * np.clip(a, 0, 18)) + rng.normal(0, 0.3, len(p))
    weight = bmi * (height / 100.0) ** 2
    return {"body_height": height, "body_weight": weight, "bmi": weight / (height / 100.0) ** 2}


def observations(c: Content, v: Visits, pan: dict[str, np.ndarray], direct: dict[str, np.ndarray]):
    enc_all, lab_all, text_all = _rows(c, pan, direct, v.site)
    value = np.zeros(len(enc_all))
    p, d = v.person[enc_all], v.day[enc_all]
    special = _body_measures(c, p, d, v.age[enc_all])
    for lab in c.catalogue.labs:
        rows = np.flatnonzero(lab_all == lab.index)
        if len(rows) == 0 or lab.text:
            continue
        if lab.key in special:
            value[rows] = special[lab.key][rows]
            continue
        mean = np.full(len(rows), lab.normal[0])
        sd = np.full(len(rows), lab.normal[1])
        for cond, c_mean, c_sd in lab.abnormal:
            on = c.prepared.onset[p[rows], cond] <= d[rows]
            mean = np.where(on, c_mean, mean)
            sd = np.where(on, c_sd, sd)
        value[rows] = np.clip(c.rng.normal(mean, sd), lab.clip[0], lab.clip[1])
    return {
        "enc": enc_all,
        "lab": lab_all.astype(np.int16),
        "value": value,
        "text": text_all.astype(np.int16),
    }
