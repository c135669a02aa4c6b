"""The generator's ground truth is read from the files lib/truth_files.py names, at paths bound as
values: a data folder whose name holds a quote still has its truth read."""

from __future__ import annotations

import duckdb

from rwe_assets.lib.linkage.quality import register_generator_truth
from rwe_assets.lib.truth_files import PERSON_RECORDS, PERSONS


def _write_truth(truth):
    truth.mkdir(parents=True)
    (truth / PERSON_RECORDS).write_text(
        "SOURCE,SOURCE_PERSON_ID,TRUE_PERSON_ID,IS_DUPLICATE\n"
        "ehr_site_a,a-1,T1,false\npayer,p-9,T1,false\nehr_site_b,b-4,T2,false\n"
    )
    (truth / PERSONS).write_text("TRUE_PERSON_ID,HOUSEHOLD_ID,TWIN_OF\nT1,H1,\nT2,H1,T1\n")


def test_truth_under_a_folder_name_with_a_quote_is_read(tmp_path):
    truth = tmp_path / "o'brien's data" / "truth"
    _write_truth(truth)
    con = duckdb.connect()
    assert register_generator_truth(con, truth)
    rows = con.execute("SELECT record_id, true_id, household_id, twin_of FROM lk_truth ORDER BY 1").fetchall()
    assert rows == [
        ("ehr_site_a|a-1", "T1", "H1", None),
        ("ehr_site_b|b-4", "T2", "H1", "T1"),
        ("payer|p-9", "T1", "H1", None),
    ]


def test_without_persons_the_records_alone_are_read(tmp_path):
    truth = tmp_path / "it's" / "truth"
    _write_truth(truth)
    (truth / PERSONS).unlink()
    con = duckdb.connect()
    assert register_generator_truth(con, truth)
    assert con.execute("SELECT count(*), count(household_id) FROM lk_truth").fetchone() == (3, 0)


def test_no_truth_registers_nothing(tmp_path):
    assert not register_generator_truth(duckdb.connect(), tmp_path / "truth")
