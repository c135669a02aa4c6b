"""Inputs as real sources send them, through every layer (landing -> raw -> staging -> CDM): does the
CDM state exactly what the source states? One FHIR R4 source sends three batches (corrections,
retractions, two versions in one batch, a version re-sent out of order, a transaction Bundle with PUT
and DELETE, references of every form, onset[x] and abatement[x], values with and without UCUM units,
dataAbsentReason, components, encounter classes beyond Synthea's, not-done, resolved, a resource type
not read, a death without a date, a patient without a birth date, an event at 23:30 -05:00); a
Synthea CSV batch is written as other tools write CSV (BOM, CRLF, an extra column, a quoted newline).
The CDM is built once per module. A case the code gets wrong and this change does not fix is a strict
xfail naming the file and the fix.

Fixtures: rwe_assets_tests/data/inputs_as_sent/ (README there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging.test_build import synthea_registry
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry

DATA = Path(__file__).parent / "data" / "inputs_as_sent"
DIABETES, ASTHMA = "44054006", "195967001"
INPATIENT_VISIT, NO_MATCHING_CONCEPT = 9201, 0


def _batch(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(lake, CDM file) of the three FHIR batches, built once for the module."""
    tmp = tmp_path_factory.mktemp("inputs_as_sent")
    batches = [_batch(DATA / "fhir" / b) for b in ("b1", "b2", "b3")]
    return tmp / "lake", build(tmp, fhir_registry(), "site", batches)


@pytest.fixture(scope="module")
def cdm(built) -> duckdb.DuckDBPyConnection:
    with duckdb.connect(str(built[1]), read_only=True) as con:
        yield con


def _merged(built, record_key: str) -> list[tuple[str, str]]:
    """(file, reason) of the rows of one record that staging merged into another version."""
    rows = lake.read_table(lake.table_path(built[0], "staging", "_merged")).to_pylist()
    return sorted(
        (r["_source_file"].rsplit("/", 1)[-1], r["reason_code"])
        for r in rows
        if r["record_key"] == record_key
    )


def _conditions(cdm, day: int) -> list[tuple]:
    """(source code, start date, end date) of the conditions starting on 2020-03-<day>: each case of the
    fixture has a day of its own."""
    return cdm.execute(
        "SELECT condition_source_value, condition_start_date, condition_end_date FROM cdm.condition_occurrence "
        "WHERE condition_start_date = make_date(2020, 3, ?)",
        [day],
    ).fetchall()


def _outcomes(cdm) -> dict[tuple[str, str, str], int]:
    rows = cdm.execute(
        "SELECT outcome, staging_table, reason_code, sum(row_count) FROM results.staging_outcomes GROUP BY ALL"
    ).fetchall()
    return {(o, t, r): int(n) for o, t, r, n in rows}


def _march(day: int) -> dt.date:
    return dt.date(2020, 3, day)


# --- record lifecycle -----------------------------------------------------------------------------


def test_a_corrected_resource_is_one_record_with_the_new_values(cdm):
    assert _conditions(cdm, 2) == [(ASTHMA, _march(2), None)]


def test_an_entered_in_error_resource_withdraws_the_record(cdm):
    assert _conditions(cdm, 3) == []
    assert _outcomes(cdm)[("retired", "event", "ENTERED_IN_ERROR")] == 1


def test_of_two_versions_in_one_batch_the_later_meta_last_updated_is_current(cdm):
    """c-dup is sent twice in b1, versionId 1 then 2 (meta.lastUpdated a day later): one record, the
    values of version 2, and version 1 counted as superseded, not quarantined as a conflicting id."""
    assert _conditions(cdm, 4) == [(ASTHMA, _march(4), None)]
    assert ("quarantined", "event", "DUPLICATE_ID") not in _outcomes(cdm)


def test_two_files_of_one_batch_holding_one_resource_give_one_record_and_count_the_other(cdm, built):
    """A bulk export split in two files of one batch: c-split's version 2 (later meta.lastUpdated) is
    in the file that sorts second; c-copy is the same resource in both."""
    assert _conditions(cdm, 8) == [(ASTHMA, _march(8), None)]
    assert _merged(built, "Condition/c-split") == [("Condition.001.ndjson", "SUPERSEDED")]
    assert _conditions(cdm, 9) == [(DIABETES, _march(9), None)]
    assert _merged(built, "Condition/c-copy") == [("Condition.ndjson", "DUPLICATE_IDENTICAL")]


def test_a_version_re_sent_out_of_order_does_not_override_the_newer_one(cdm, built):
    """c-ooo: version 3 (May) in b2, version 2 (April) re-sent in b3: version 3 stays, b3's is stale."""
    assert _conditions(cdm, 5) == [(ASTHMA, _march(5), None)]
    assert _merged(built, "Condition/c-ooo") == [
        ("Condition.ndjson", "STALE_VERSION"),
        ("Condition.ndjson", "SUPERSEDED"),
    ]


def test_a_transaction_delete_removes_the_record(cdm):
    """c-del (b1) is deleted by the b2 Bundle's DELETE entry: retired DELETED, counted, not quarantined."""
    assert _conditions(cdm, 6) == []
    assert _outcomes(cdm)[("retired", "event", "DELETED")] == 1


def _raw_quarantine(built) -> list[tuple[int, str]]:
    rows = lake.read_table(lake.table_path(built[0], "raw", "_quarantine")).to_pylist()
    return sorted(
        (r["_line_number"], r["reason_code"]) for r in rows if r["_source_file"].endswith("transaction.json")
    )


def test_a_delete_and_a_put_of_one_resource_in_a_transaction_keep_the_put(cdm, built):
    """FHIR R4 applies a transaction's DELETEs before its PUTs: c-again's DELETE (after its PUT in the
    Bundle) removes only the b1 version; the PUT stands and the DELETE is counted in the quarantine."""
    assert _conditions(cdm, 19) == [(ASTHMA, _march(19), None)]
    assert (4, "BUNDLE_DELETE_BEFORE_WRITE") in _raw_quarantine(built)


def test_a_conditional_delete_is_quarantined_not_guessed(cdm, built):
    assert _conditions(cdm, 20) == [(DIABETES, _march(20), None)]
    assert (5, "BUNDLE_DELETE_UNRESOLVED") in _raw_quarantine(built)


def test_a_transaction_put_replaces_the_resource(cdm):
    assert _conditions(cdm, 7) == [(ASTHMA, _march(7), None)]


# --- references -----------------------------------------------------------------------------------


def test_versioned_and_urn_uuid_references_name_the_patient(cdm):
    persons = cdm.execute(
        "SELECT DISTINCT person_id FROM cdm.condition_occurrence WHERE condition_start_date IN (?, ?)",
        [_march(10), _march(11)],
    ).fetchall()
    assert persons == [(1,)] and len(_conditions(cdm, 10)) == len(_conditions(cdm, 11)) == 1


def test_a_logical_reference_by_identifier_is_quarantined_not_guessed(cdm):
    assert _conditions(cdm, 12) == []
    assert _outcomes(cdm)[("quarantined", "event", "MISSING_PERSON")] == 1


# --- what the source states about time ---------------------------------------------------------------


def test_an_onset_that_is_no_date_starts_on_the_recorded_date(cdm):
    """onsetAge and onsetString state no calendar date: the condition starts when it was recorded (the
    OMOP fallback); onsetPeriod starts at its start, and its end is the onset's end, not an abatement."""
    assert _conditions(cdm, 13) == [(DIABETES, _march(13), None)]
    assert _conditions(cdm, 14) == [(DIABETES, _march(14), None)]
    assert _conditions(cdm, 15) == [(DIABETES, _march(15), None)]


def test_an_abatement_without_a_date_states_no_end(cdm):
    assert _conditions(cdm, 16) == [(DIABETES, _march(16), None)]


def test_an_event_late_in_the_evening_keeps_its_local_day(cdm):
    assert _conditions(cdm, 18) == [(DIABETES, _march(18), None)]
    late = cdm.execute(
        "SELECT visit_start_date FROM cdm.visit_occurrence WHERE hour(visit_start_datetime) = 23"
    ).fetchall()
    assert late == [(dt.date(2020, 4, 20),)]


# --- values ---------------------------------------------------------------------------------------


def test_units_values_and_absent_values_are_stated_as_sent(cdm):
    rows = cdm.execute(
        "SELECT measurement_date, measurement_source_value, value_as_number, unit_source_value, unit_concept_id "
        "FROM cdm.measurement WHERE measurement_date <= DATE '2020-05-04' "
        "ORDER BY measurement_date, measurement_source_value"
    ).fetchall()
    may = dt.date(2020, 5, 1)
    assert rows == [
        (may, "2339-0", 5.5, "mmol/L", 8753),  # UCUM code: mapped
        (may.replace(day=2), "2339-0", 99.0, "mg per dL", NO_MATCHING_CONCEPT),  # free text: kept, unmapped
        (may.replace(day=3), "2339-0", None, None, None),  # dataAbsentReason: the test, no value
        (may.replace(day=4), "8462-4", None, None, None),  # a component without value
        (may.replace(day=4), "8480-6", 120.0, "mm[Hg]", 8876),
    ]


def test_of_two_versions_of_an_observation_in_one_batch_the_later_is_current_whole(cdm):
    """o-bp-versions in b1: version 2 (later meta.lastUpdated, Observation.ndjson) has two components,
    version 1 (Observation.001.ndjson) three: the third is no fact of the current version."""
    rows = cdm.execute(
        "SELECT measurement_source_value, value_as_number FROM cdm.measurement "
        "WHERE measurement_date = DATE '2020-05-10' ORDER BY 1"
    ).fetchall()
    assert rows == [("8462-4", 85.0), ("8480-6", 130.0)]
    assert _outcomes(cdm)[("retired", "event", "ABSENT_FROM_NEWER_VERSION")] == 1


# --- encounters, statuses, resource types ----------------------------------------------------------


def test_inpatient_acute_and_non_acute_classes_are_inpatient_visits(cdm):
    rows = cdm.execute(
        "SELECT visit_source_value, visit_concept_id FROM cdm.visit_occurrence "
        "WHERE visit_source_value IN ('ACUTE', 'NONAC', 'OBSENC') ORDER BY 1"
    ).fetchall()
    assert rows == [("ACUTE", INPATIENT_VISIT), ("NONAC", INPATIENT_VISIT), ("OBSENC", NO_MATCHING_CONCEPT)]


def test_not_done_and_resources_not_read_give_no_exposure_and_are_counted(cdm):
    assert cdm.execute("SELECT count(*) FROM cdm.drug_exposure").fetchone() == (0,)
    assert _outcomes(cdm)[("retired", "event", "NOT_DONE")] == 1
    not_read = cdm.execute(
        "SELECT staged_rows, excluded_rows FROM results.reconciliation WHERE cdm_table = 'not_modelled'"
    ).fetchall()
    assert not_read == [(1, 1)]  # the MedicationStatement: in raw, not in the CDM


def test_a_resolved_allergy_is_still_the_allergy_recorded(cdm):
    rows = cdm.execute("SELECT observation_source_value, observation_date FROM cdm.observation").fetchall()
    assert rows == [("91935009", dt.date(2020, 6, 2))]


def test_a_death_without_a_date_and_a_person_without_a_birth_year_state_nothing_invented(cdm):
    assert cdm.execute("SELECT count(*) FROM cdm.death").fetchone() == (0,)
    assert cdm.execute("SELECT reason_code FROM results.person_exclusion").fetchall() == [
        ("NO_YEAR_OF_BIRTH",)
    ]


# --- CSV as other tools write it -----------------------------------------------------------------


def test_a_csv_with_bom_crlf_an_extra_column_and_a_quoted_newline_stages_as_written(tmp_path):
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    registry = synthea_registry()
    files = _batch(DATA / "synthea_csv")
    for batch in ("b1", "b2"):  # the same files landed twice: the second copy adds nothing
        land(landing, "site", batch, files)
        ingest_batch(lake_dir, landing, registry.get("site"), batch)
    report = build_staging(lake_dir, registry)

    def staged(name: str) -> list[dict]:
        return lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()

    assert [(p["source_person_id"], p["birth_date"]) for p in staged("person_source")] == [
        ("p1", dt.date(1980, 1, 2))
    ]
    assert [v["record_key"] for v in staged("visit")] == ["e1"]
    assert [e["code_description"] for e in staged("event")] == ["Diabetes mellitus type 2\n(disorder)"]
    assert all(r.unaccounted == 0 and r.merged == 0 for r in report.reconciliation)
