"""Facts the source does not say, found by tracing the public samples (Synthea CSV and FHIR, DE-SynPUF,
cyvcf2's VCFs) record by record to the CDM (audit of 2026-12-07). Each test holds the smallest
hand-written input that shows one mismatch. A mismatch in a file another engineer owns is marked
xfail(strict=True) naming the file and the fix: it turns red the day the fix lands, so the marker goes.

Fixtures: rwe_assets_tests/data/semantics_audit/ (README there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm.build import run_sql
from rwe_assets.lib.cdm_spec import cdm_ddl
from rwe_assets.lib.genomics.cdm import build_genomics_cdm
from rwe_assets.lib.genomics.staging import stage_genomics
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets_tests.lib.genomics.conftest import land_lab
from rwe_assets_tests.lib.staging.test_build import (
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    stage,
    staged,
    synthea_registry,
)

DATA = Path(__file__).parent / "data" / "semantics_audit"
EHR, CLAIM = 32817, 32810


def test_a_still_active_prescription_states_no_days_supply(tmp_path):
    files = {
        "patients.csv": PATIENTS_HEADER + patient("p1"),
        "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
        "medications.csv": (DATA / "medications.csv").read_text(),
    }
    lake_dir, _ = stage(tmp_path, synthea_registry(), [("b1", files)])
    supply = {r["code"]: r["days_supply"] for r in staged(lake_dir, "event") if r["event_kind"] == "drug"}
    assert supply == {"314231": 30, "1870230": None}  # 365 days / 12 fills; no STOP: not stated


def _death_inputs(con, enrollment_entity: str) -> None:
    """One EHR person who died, whose source also sends insurance spans (Synthea's payer_transitions,
    FHIR Coverage), and one claims beneficiary who died, as death.sql reads them."""
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    con.execute(
        "CREATE TEMP TABLE stg_person_source AS SELECT * FROM (VALUES "
        "('ehr', 'p1', DATE '2004-03-21'), ('payer', 'b1', DATE '2010-05-01')) "
        "t(source_system, source_person_id, death_date)"
    )
    con.execute(
        "CREATE TEMP TABLE stg_enrollment AS SELECT * FROM (VALUES "
        f"('ehr', '{enrollment_entity}'), ('payer', 'beneficiary_summary')) t(source_system, _source_entity)"
    )
    con.execute(  # the registry's kind per source (lib/cdm/inputs.py register_sources)
        "CREATE TEMP TABLE source_kind AS SELECT * FROM (VALUES ('ehr', 'ehr'), ('payer', 'claims')) "
        "t(source_system, kind)"
    )
    con.execute(
        "CREATE TEMP TABLE crosswalk AS SELECT * FROM (VALUES ('ehr', 'p1', 1), ('payer', 'b1', 2)) "
        "t(source_system, source_person_id, person_id)"
    )
    con.execute(
        "INSERT INTO cdm.person (person_id, gender_concept_id, year_of_birth, race_concept_id, "
        "ethnicity_concept_id) VALUES (1, 8532, 1950, 0, 0), (2, 8507, 1940, 0, 0)"
    )


@pytest.mark.parametrize("enrollment_entity", ["payer_transitions", "coverage"])
def test_an_ehr_death_is_typed_ehr_even_when_the_ehr_sends_insurance(enrollment_entity):
    con = duckdb.connect()
    _death_inputs(con, enrollment_entity)
    run_sql(con, "death")
    rows = con.execute(
        "SELECT person_id, death_date, death_type_concept_id FROM cdm.death ORDER BY 1"
    ).fetchall()
    assert rows == [(1, dt.date(2004, 3, 21), EHR), (2, dt.date(2010, 5, 1), CLAIM)]


def _enrollment_inputs(con, spans: list[tuple[str, str, str]]) -> None:
    """One person's staged insurance spans (payer, start, end) of one Synthea export, as
    payer_plan_period.sql reads them."""
    for statement in cdm_ddl("cdm"):
        con.execute(statement)
    con.execute(
        "INSERT INTO cdm.person (person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, "
        "race_concept_id, ethnicity_concept_id) VALUES (1, 8532, 1990, 1, 1, 0, 0)"
    )
    con.execute(
        "CREATE TEMP TABLE crosswalk AS SELECT 'ehr' AS source_system, 'p1' AS source_person_id, 1 AS person_id"
    )
    con.execute(
        "CREATE TEMP TABLE stg_enrollment (source_system VARCHAR, record_key VARCHAR, source_person_id VARCHAR, "
        "start_date DATE, end_date DATE, payer_source_value VARCHAR, plan_source_value VARCHAR, "
        "_batch_id VARCHAR, _ingested_at TIMESTAMPTZ)"
    )
    con.executemany(
        "INSERT INTO stg_enrollment VALUES ('ehr', ?, 'p1', ?, ?, ?, NULL, 'b1', TIMESTAMPTZ '2024-01-01 00:00:00+00')",
        [(f"k{n}", start, end, payer) for n, (payer, start, end) in enumerate(spans)],
    )


def test_a_mid_month_change_of_payer_leaves_no_day_uncovered():
    # Synthea's payer_transitions: a new payer from the day the previous one ends, every year
    spans = [
        ("A", "2017-01-10", "2017-12-09"),
        ("B", "2017-12-09", "2018-12-15"),
        ("A", "2018-12-15", "2019-06-30"),
    ]
    con = duckdb.connect()
    _enrollment_inputs(con, spans)
    run_sql(con, "payer_plan_period")
    covering = con.execute(
        """
        SELECT count(s.start_date) AS spans, count(*) AS days
        FROM generate_series(DATE '2017-01-10', DATE '2019-06-30', INTERVAL 1 DAY) d(day)
        LEFT JOIN payer_plan_span s ON d.day BETWEEN s.start_date AND s.end_date
        GROUP BY d.day HAVING spans <> 1
        """
    ).fetchall()
    assert covering == []  # every covered day in exactly one period
    periods = con.execute(
        "SELECT payer_source_value, start_date FROM payer_plan_span ORDER BY start_date"
    ).fetchall()
    # the day of a handover is the new payer's, whatever the record keys' order
    assert periods == [("A", dt.date(2017, 1, 10)), ("B", dt.date(2017, 12, 9)), ("A", dt.date(2018, 12, 15))]


def _stage_lab(dirs, vcf: str, manifest: str):
    """One lab batch (a fixture VCF under its own name, its manifest) ingested and staged; the lake."""
    lake_dir, landing = dirs
    files = {vcf: (DATA / vcf).read_text(), "sample_manifest.csv": (DATA / manifest).read_text()}
    land_lab(landing, "b1", files)
    ingest_batch(lake_dir, landing, load_registry().get("lab"), "b1")
    stage_genomics(lake_dir)
    return lake_dir


def test_rs_id_is_a_dbsnp_id_the_vcf_states_or_null(dirs):
    """The VCF ID column holds any caller's ids (test-hemi.vcf: `ID1`): only an rsID is a dbSNP id."""
    lake_dir = _stage_lab(dirs, "variant_ids.vcf", "variant_ids_manifest.csv")
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "variant")).to_pylist()
    assert sorted((r["pos"], r["rs_id"]) for r in rows) == [
        (100, None),
        (200, "rs80357906"),
        (300, None),
        (400, "rs12"),
        (500, None),
    ]


def test_calls_of_the_sample_a_header_names_the_tumor_are_somatic(dirs):
    """variant_annotation.variant_origin: 'Somatic' for the column the header's ##tumor_sample names
    (GATK Mutect2), not the germline default of the lab's panels."""
    lake_dir = _stage_lab(dirs, "tumor_normal.vcf", "tumor_normal_manifest.csv")
    con = duckdb.connect()
    for statement in cdm_ddl():
        con.execute(statement)
    con.execute(
        "CREATE TABLE person_map AS SELECT 'lab' AS source_system, 'P1' AS source_person_id, 1 AS person_id"
    )
    build_genomics_cdm(con, lake_dir, "person_map")
    rows = con.execute(
        """
        SELECT vo.position, s.specimen_source_id, va.variant_origin
        FROM cdm.variant_annotation va JOIN cdm.variant_occurrence vo USING (variant_occurrence_id)
        JOIN cdm.specimen s USING (specimen_id) ORDER BY 1, 2
        """
    ).fetchall()
    assert rows == [(100, "TUMOR", "Somatic"), (200, "NORMAL", "Germline"), (200, "TUMOR", "Somatic")]
