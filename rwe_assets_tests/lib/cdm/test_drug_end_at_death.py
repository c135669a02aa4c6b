"""Derived drug end dates end at death (lib/sql/cdm/drug_end_at_death.sql): hand-built exposures of a
person who died on 2020-03-01, with the end date each must have afterwards."""

from __future__ import annotations

import datetime as dt

import duckdb

from rwe_assets.lib.cdm.build import run_sql
from rwe_assets.lib.cdm_spec import cdm_ddl

DEATH = dt.date(2020, 3, 1)
# id, person, start, end, verbatim end, days_supply -> expected end
CASES = [
    (1, 1, "2020-02-15", "2020-05-15", None, 90, "2020-03-01"),  # fill before death, supply outlasts it
    (2, 1, "2020-01-01", "2020-01-31", None, 30, "2020-01-31"),  # ends before death: unchanged
    (3, 1, "2020-02-20", "2020-04-20", "2020-04-20", None, "2020-04-20"),  # end stated by the source
    (4, 1, "2020-03-10", "2020-04-10", None, 31, "2020-04-10"),  # starts after death: left for the DQD
    (5, 1, "2020-03-01", "2020-03-31", None, 30, "2020-03-01"),  # filled on the day of death
    (6, 2, "2020-02-15", "2020-05-15", None, 90, "2020-05-15"),  # a person without a death record
]


def test_derived_end_dates_are_capped_at_death_and_stated_ones_are_kept():
    con = duckdb.connect()
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    con.execute(
        "INSERT INTO cdm.death (person_id, death_date, death_type_concept_id) VALUES (1, ?, 32817)", [DEATH]
    )
    for drug_id, person, start, end, verbatim, supply, _ in CASES:
        con.execute(
            "INSERT INTO cdm.drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date, "
            "drug_exposure_end_date, verbatim_end_date, days_supply, drug_type_concept_id) "
            "VALUES (?, ?, 0, ?, ?, ?, ?, 32869)",
            [drug_id, person, start, end, verbatim, supply],
        )
    run_sql(con, "drug_end_at_death")
    rows = con.execute(
        "SELECT drug_exposure_id, drug_exposure_end_date::VARCHAR, days_supply FROM cdm.drug_exposure ORDER BY 1"
    ).fetchall()
    assert rows == [(case[0], case[6], case[5]) for case in CASES]
