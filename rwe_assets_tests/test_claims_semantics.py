"""Facts the source states that the CDM lost or misstated: a DE-SynPUF claim's admitting diagnosis
and its carrier lines' diagnoses (staged, a repeated one as the same fact), the admitting status in
CONDITION_OCCURRENCE, and a care plan the vocabulary maps to nothing (an OBSERVATION, not a procedure).

Fixtures: rwe_assets_tests/data/claims_semantics/ (README there)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import duckdb
import pytest

from rwe_assets import constants as c
from rwe_assets.lib.cdm.build import run_sql
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.model import EVENT
from rwe_assets_tests.lib.staging.test_synpuf import (
    SAMPLE,
    assert_reconciled,
    beneficiary,
    csv_text,
    header,
    payer_registry,
    stage_files,
    staged,
)

DATA = Path(__file__).parent / "data" / "claims_semantics"
BENEFICIARY = {
    "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("B1", dict.fromkeys(range(1, 13), "H1"))]
    )
}


def fixture_rows(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def diagnoses(lake_dir) -> list[tuple[str, str, str]]:
    """(record key, code, condition_status) of every staged diagnosis."""
    rows = staged(lake_dir, "event")
    return sorted(
        (r["record_key"], r["code"], r["condition_status"]) for r in rows if r["event_kind"] == "condition"
    )


def test_admitting_and_line_diagnoses_are_staged_once_each(tmp_path):
    files = BENEFICIARY | {
        "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv": csv_text(
            "Inpatient", fixture_rows("inpatient_claims.csv")
        ),
        "DE1_0_2008_to_2010_Carrier_Claims_Sample_1A.csv": csv_text(
            "Carrier", fixture_rows("carrier_claims.csv")
        ),
    }
    lake_dir, report = stage_files(tmp_path, [("b1", files)])
    assert_reconciled(report)
    assert report.quarantine_reasons == {}
    assert diagnoses(lake_dir) == [
        ("carrier_claims|k1|1#ICD9_DGNS_CD_1", "401.9", "primary"),  # line 1 repeats it: no row of its own
        ("carrier_claims|k1|1#LINE_ICD9_DGNS_CD_2", "780.52", "secondary"),  # line 3 repeats it
        ("carrier_claims|k2|1#LINE_ICD9_DGNS_CD_1", "V70.0", "primary"),  # no claim diagnosis
        ("inpatient_claims|i1|1#ADMTNG_ICD9_DGNS_CD", "729.5", "admitting"),
        ("inpatient_claims|i1|1#ICD9_DGNS_CD_1", "428.0", "primary"),
        ("inpatient_claims|i1|1#ICD9_DGNS_CD_2", "401.9", "secondary"),
        ("inpatient_claims|i2|1#ADMTNG_ICD9_DGNS_CD", "428.0", "admitting"),  # also the primary: two facts
        ("inpatient_claims|i2|1#ICD9_DGNS_CD_1", "428.0", "primary"),
    ]


def test_a_layout_without_admitting_or_line_columns_stages_as_before(tmp_path):
    out = io.StringIO()
    columns = [name for name in header("Inpatient") if name != "ADMTNG_ICD9_DGNS_CD"]
    writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(fixture_rows("inpatient_claims.csv"))
    files = BENEFICIARY | {"DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv": out.getvalue()}
    lake_dir, report = stage_files(tmp_path, [("b1", files)])
    assert_reconciled(report)
    assert [(k.split("#")[1], s) for k, _, s in diagnoses(lake_dir)] == [
        ("ICD9_DGNS_CD_1", "primary"),
        ("ICD9_DGNS_CD_2", "secondary"),
        ("ICD9_DGNS_CD_1", "primary"),
    ]


def _event_inputs(con, events: str) -> None:
    """The CDM tables and one person's staged events (`events`: a SELECT of stg_event columns), as
    mapped_event.sql reads them."""
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    columns = ", ".join(f"{name} {kind}" for name, kind in EVENT.all_columns)
    con.execute(f"CREATE TEMP TABLE stg_event ({columns})")
    con.execute(
        "INSERT INTO stg_event BY NAME SELECT 'ehr' AS source_system, 'p1' AS source_person_id, "
        f"TIMESTAMP '2020-01-01' AS start_datetime, * FROM ({events})"
    )
    con.execute(
        "CREATE TEMP TABLE crosswalk AS SELECT 'ehr' AS source_system, 'p1' AS source_person_id, 1 AS person_id"
    )
    con.execute(
        "CREATE TEMP TABLE visit_link (visit_key VARCHAR, visit_occurrence_id INTEGER, visit_detail_id INTEGER, "
        "provider_id INTEGER)"
    )


@pytest.mark.parametrize("vocabulary_has_admitting", [True, False])
def test_an_admitting_diagnosis_has_the_admission_status(vocabulary_has_admitting):
    con = duckdb.connect()
    _event_inputs(
        con,
        "SELECT 'condition' AS event_kind, 'ICD9CM' AS vocabulary_id, '428.0' AS code, 'inpatient' AS claim_type, "
        "status AS condition_status, 'i1#' || status AS record_key "
        "FROM (VALUES ('primary'), ('secondary'), ('admitting')) t(status)",
    )
    status_ids = [c.PRIMARY_DIAGNOSIS, c.SECONDARY_DIAGNOSIS] + [
        c.ADMITTING_DIAGNOSIS
    ] * vocabulary_has_admitting
    con.executemany(
        "INSERT INTO cdm.concept VALUES (?, 'status', 'Condition Status', 'Condition Status', 'Condition Status', "
        "'S', ?, DATE '1970-01-01', DATE '2099-12-31', NULL)",
        [(i, str(i)) for i in status_ids],
    )
    run_sql(con, "mapped_event")
    con.execute(
        "CREATE TEMP TABLE ids_condition_occurrence AS "
        "SELECT natural_key, row_number() OVER (ORDER BY natural_key) AS id FROM mapped_event"
    )
    run_sql(con, "condition_occurrence")
    rows = con.execute(
        "SELECT condition_status_concept_id, condition_status_source_value FROM cdm.condition_occurrence "
        "ORDER BY condition_occurrence_id"  # ids in natural key order: admitting, primary, secondary
    ).fetchall()
    admitting = c.ADMITTING_DIAGNOSIS if vocabulary_has_admitting else 0  # the demo subset lacks it
    assert rows == [
        (admitting, "admitting"),
        (c.PRIMARY_DIAGNOSIS, "primary"),
        (c.SECONDARY_DIAGNOSIS, "secondary"),
    ]


def test_a_care_plan_the_vocabulary_maps_to_nothing_is_no_procedure():
    con = duckdb.connect()
    _event_inputs(
        con,
        "SELECT record_key, event_kind, code, code_description, 'SNOMED' AS vocabulary_id "
        f"FROM read_csv('{DATA / 'careplan_events.csv'}', all_varchar = true)",
    )
    # the bundled vocabulary's concepts of these codes: 'Care plan' (a non-standard Type Concept, no
    # mapping) and 'Respiratory therapy' (standard, Procedure domain)
    con.execute(
        "INSERT INTO cdm.concept VALUES "
        "(37117046, 'Care plan', 'Type Concept', 'SNOMED', 'Record Artifact', NULL, '734163000', "
        "DATE '2017-07-31', DATE '2099-12-31', NULL), "
        "(4203780, 'Respiratory therapy', 'Procedure', 'SNOMED', 'Procedure', 'S', '53950000', "
        "DATE '1970-01-01', DATE '2099-12-31', NULL)"
    )
    run_sql(con, "mapped_event")
    routed = con.execute(
        "SELECT record_key, cdm_table, concept_id, source_concept_id FROM mapped_event ORDER BY 1"
    )
    assert routed.fetchall() == [
        ("cp-artifact", "observation", 0, 37117046),  # only a plan was recorded
        ("cp-therapy", "procedure_occurrence", 4203780, 4203780),  # a Procedure-domain plan: ordered
        ("proc-unmapped", "procedure_occurrence", 0, 0),  # an unmapped procedure stays a procedure
    ]


def test_the_public_sample_keeps_its_admitting_and_line_diagnoses(tmp_path):
    landing = tmp_path / "landing" / "payer" / "b1"
    shutil.copytree(SAMPLE, landing)
    lake_dir, registry = tmp_path / "lake", payer_registry()
    ingest_batch(lake_dir, tmp_path / "landing", registry.get("payer"), "b1")
    report = build_staging(lake_dir, registry)
    assert_reconciled(report)
    facts = {(k.split("#")[1], code, status) for k, code, status in diagnoses(lake_dir)}
    admitting = {(code, status) for field, code, status in facts if field == "ADMTNG_ICD9_DGNS_CD"}
    assert admitting == {
        ("729.5", "admitting"),
        ("852.01", "admitting"),
        ("738.4", "admitting"),
        ("706.2", "admitting"),
    }
    lines = sorted((field, code) for field, code, _ in facts if field.startswith("LINE_"))
    # V04.81 is on lines 2 and 3 of one claim: one fact
    assert lines == [
        ("LINE_ICD9_DGNS_CD_1", "366.16"),
        ("LINE_ICD9_DGNS_CD_1", "780.52"),
        ("LINE_ICD9_DGNS_CD_2", "V04.81"),
    ]
