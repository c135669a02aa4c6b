"""DEATH's type when an EHR and a payer state the same earliest date (lib/sql/cdm/death.sql): EHR,
whatever order the staged rows come in (arg_min over the date picked either source on a tie)."""

from __future__ import annotations

import datetime as dt
import itertools

import duckdb
import pytest

from rwe_assets.lib.cdm.build import run_sql
from rwe_assets.lib.cdm_spec import cdm_ddl

EHR, CLAIM = 32817, 32810
SAME_DAY = dt.date(2019, 7, 4)
# (source, person in that source, death date): both sources say 2019-07-04; the payer also a later day
ROWS = [("payer", "b1", SAME_DAY), ("ehr", "p1", SAME_DAY), ("payer", "b1", dt.date(2019, 7, 9))]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(ROWS)))))
def test_a_death_date_both_sources_state_is_typed_ehr_in_any_row_order(order):
    con = duckdb.connect()
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    con.execute(
        "CREATE TEMP TABLE stg_person_source (source_system VARCHAR, source_person_id VARCHAR, death_date DATE)"
    )
    con.executemany("INSERT INTO stg_person_source VALUES (?, ?, ?)", [ROWS[i] for i in order])
    con.execute(
        "CREATE TEMP TABLE source_kind AS SELECT * FROM (VALUES ('ehr', 'ehr'), ('payer', 'claims')) t(source_system, kind)"
    )
    con.execute(
        "CREATE TEMP TABLE crosswalk AS SELECT * FROM (VALUES ('ehr', 'p1', 1), ('payer', 'b1', 1)) t(source_system, source_person_id, person_id)"
    )
    con.execute(
        "INSERT INTO cdm.person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id) "
        "VALUES (1, 8532, 1950, 0, 0)"
    )
    run_sql(con, "death")
    rows = con.execute(
        "SELECT person_id, death_date, death_datetime, death_type_concept_id FROM cdm.death"
    ).fetchall()
    assert rows == [(1, SAME_DAY, dt.datetime(2019, 7, 4), EHR)]
