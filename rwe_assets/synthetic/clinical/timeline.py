"""The clinical model's data: encounter kinds, sites, and the tables it hands to the writers.

Prepared (natural_history.py) holds each person's onsets, death and hospital events; Timeline
(encounters.py, then fill.py) holds the encounters and what happened at each, as columnar arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rwe_assets.synthetic.catalogue import Catalogue


class Kind:
    WELLNESS = 0
    FOLLOWUP = 1
    DIAGNOSIS = 2
    ACUTE = 3
    EMERGENCY = 4
    INPATIENT = 5
    CANCER_DX = 6
    SCREENING = 7
    CHEMO = 8
    DEATH = 9


SITE_NONE, SITE_A, SITE_B = -1, 0, 1
SMOKING_TEXTS = ("Never smoker", "Former smoker", "Every day smoker")
NATURAL_CAUSE = "Natural death"


def text_table(catalogue: Catalogue) -> tuple[str, ...]:
    """Texts of text-valued observations: smoking status, then causes of death (a condition's
    description, by condition index), then the natural cause."""
    return (*SMOKING_TEXTS, *(c.description for c in catalogue.conditions), NATURAL_CAUSE)


@dataclass
class Prepared:
    onset: np.ndarray  # int32 [n, conditions]: onset day, NEVER if not (chronic, cancer, history)
    drug_pick: np.ndarray  # int16 [n, conditions]: the drug of a "one" regimen, -1 otherwise
    add_on: np.ndarray  # bool [n, conditions]: the add-on drug is taken
    obese_bmi: np.ndarray  # float: BMI after obesity onset
    events: dict[str, np.ndarray]  # hospital events: person, cond, day, stay
    cause: np.ndarray  # int16: condition index of the cause of death, -1 natural
    allergy: np.ndarray  # bool [n, allergies]


@dataclass
class Timeline:
    """Encounters and their content. Encounter arrays are sorted by (person, start)."""

    e_person: np.ndarray
    e_start: np.ndarray  # int64 seconds
    e_stop: np.ndarray
    e_type: np.ndarray  # int16 encounter type
    e_kind: np.ndarray  # int8 Kind
    e_reason: np.ndarray  # int16 condition, -1
    e_site: np.ndarray  # int8 SITE_*
    e_record: np.ndarray  # int8: 0 main record, 1 duplicate record (EHR sites)
    e_claim: np.ndarray  # bool: the payer is billed
    e_claim_record: np.ndarray  # int8: 0 main member id, 1 second member id
    # conditions (EHR sites only)
    c_enc: np.ndarray
    c_cond: np.ndarray
    c_start: np.ndarray  # day
    c_stop: np.ndarray  # day, -1 open
    # drug orders (EHR)
    m_enc: np.ndarray
    m_drug: np.ndarray
    m_start: np.ndarray  # seconds
    m_stop: np.ndarray  # seconds, -1 open
    m_reason: np.ndarray
    m_dispenses: np.ndarray
    # procedures, lab panels, vaccines (EHR and claims)
    p_enc: np.ndarray
    p_proc: np.ndarray
    p_reason: np.ndarray
    pn_enc: np.ndarray
    pn_panel: np.ndarray
    i_enc: np.ndarray
    i_vax: np.ndarray
    # observations (EHR)
    o_enc: np.ndarray
    o_lab: np.ndarray
    o_value: np.ndarray
    o_text: np.ndarray  # index into text_table, -1 numeric
    # allergies and devices (EHR)
    a_enc: np.ndarray
    a_allergy: np.ndarray
    a_start: np.ndarray  # day
    d_enc: np.ndarray
    d_device: np.ndarray
    # pharmacy fills (payer)
    f_person: np.ndarray
    f_drug: np.ndarray
    f_day: np.ndarray
    f_record: np.ndarray
