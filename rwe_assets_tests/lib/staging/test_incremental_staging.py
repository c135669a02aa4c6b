"""Incremental staging (lib/staging/incremental.py): batches staged one run at a time give, row for row,
the staging tables of a full build over the same lake (staged_digests), for every record lifecycle
case; the fallback rule picks a full build when it must; an interrupted merge is never taken for a
good state; _touched lists what a run changed."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging import incremental, incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_lifecycle as cases
from rwe_assets_tests.lib.staging import test_synpuf as synpuf
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

AUDIT = ("_quarantine", "_merged", "_retired")


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    """These extracts are a few rows: any batch is a large share of them."""
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


def stage_in_turn(tmp_path, registry, source: str, batches: list[dict[str, str]]):
    """Land, ingest and stage each batch in its own run; returns the lake and the reports."""
    lake_dir, landing, reports = tmp_path / "lake", tmp_path / "landing", []
    for number, files in enumerate(batches, start=1):
        land(landing, source, f"b{number}", files)
        ingest_batch(lake_dir, landing, registry.get(source), f"b{number}")
        reports.append(build_staging(lake_dir, registry))
    return lake_dir, reports


def audit_rows(lake_dir) -> dict[str, Counter]:
    out = {}
    for name in AUDIT:
        rows = lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()
        out[name] = Counter(tuple(sorted(r.items())) for r in rows)
    return out


def assert_equals_full_build(lake_dir, registry) -> None:
    """The staged tables (and the audit tables) as the runs left them are those a full build of the
    same raw writes."""
    stepwise, audit = incremental.staged_digests(lake_dir), audit_rows(lake_dir)
    full = build_staging(lake_dir, registry, incremental=False)
    assert full.mode == "full"
    assert incremental.staged_digests(lake_dir) == stepwise
    assert audit_rows(lake_dir) == audit


ORPHANS = {  # an encounter and a diagnosis of a patient whose record comes in the next batch
    "patients.csv": PATIENTS_HEADER + patient("p1"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1") + encounter("e2", "p2"),
    "conditions.csv": CONDITIONS_HEADER
    + "2020-01-01,,p1,e1,44054006,Diabetes\n"
    + "2020-01-01,,p2,e2,38341003,Hypertension\n"
    + "2020-01-01,,p1,e9,38341003,Hypertension\n",  # its encounter e9 never comes: stays quarantined
}
ADOPTING = {"patients.csv": PATIENTS_HEADER + patient("p2", first="Bo")}
C1, C2 = fhir.condition("c1"), fhir.condition("c2", code=fhir.cc(fhir.SNOMED, "38341003"))
RETRACTION = {
    "Condition.000.ndjson": fhir.ndjson(
        fhir.condition("c1", verificationStatus={"coding": [{"code": "entered-in-error"}]})
    )
}
KEPT, VOIDED = cases.carrier_claim("C1", ["I10"]), cases.carrier_claim("C2", ["E11.9", "I10"])
ONLY_P2 = {
    "patients.csv": PATIENTS_HEADER + patient("p2", first="Bo"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e2", "p2"),
    "conditions.csv": CONDITIONS_HEADER,
}
BLOOD_PRESSURE = cases.blood_pressure("o1", ("8480-6", 120.0), ("8462-4", 80.0))
FHIR_FIRST = {  # a patient with identifiers; next batches: a retraction, then a note about them (the
    # patient not re-sent) and an Observation re-sent with fewer components
    **cases.fhir_extract(C1, C2, observations=(BLOOD_PRESSURE,)),
    "Patient.000.ndjson": fhir.ndjson(
        fhir.patient("p1", telecom=[{"system": "phone", "value": "555-201-3344"}])
    ),
}
FHIR_LAST = {
    "DocumentReference.000.ndjson": fhir.ndjson(fhir.document("d1", "Ann34 Lee12, phone 555-201-3344.")),
    "Observation.000.ndjson": fhir.ndjson(cases.blood_pressure("o1", ("8480-6", 125.0))),
}
CORRECTED = cases.corrected(
    cases.SYNTHEA_V1, observations=("170.5,cm", "171.5,cm"), medications=(",12,12,,", ",9,9,,")
)
WITH_DIAGNOSIS = {
    "patients.csv": PATIENTS_HEADER + patient("p1"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
    "conditions.csv": CONDITIONS_HEADER + "2020-01-01,,p1,e1,44054006,Diabetes\n",
}
INVALID_RESEND = {  # the diagnosis sent again with a bad end date: quarantined, the first version stays
    **WITH_DIAGNOSIS,
    "patients.csv": PATIENTS_HEADER + patient("p1", first="Ana"),  # a new file: p1 is current from b2
    "conditions.csv": CONDITIONS_HEADER + "2020-01-01,not-a-date,p1,e1,44054006,Diabetes\n",
}
# p1 corrected, no conditions file: b2 stays the snapshot of p1's conditions, whose retirements (none:
# b2 holds the key, if invalid) a staged batch has applied already
PERSON_ONLY = {"patients.csv": PATIENTS_HEADER + patient("p1", first="Anne")}
CASES = {  # (registry, source, batches staged one run each)
    "invalid version in a snapshot": (
        synthea_registry,
        "site",
        [WITH_DIAGNOSIS, INVALID_RESEND, PERSON_ONLY],
    ),
    "snapshot corrections": (synthea_registry, "site", [cases.SYNTHEA_V1, CORRECTED, ONLY_P2]),
    "orphans adopted": (synthea_registry, "site", [ORPHANS, ADOPTING]),
    "fhir versions": (fhir.fhir_registry, "site", [FHIR_FIRST, RETRACTION, FHIR_LAST]),
    "claim void and adjustment": (
        synpuf.payer_registry,
        "payer",
        [
            cases.claims_extract(KEPT, VOIDED),
            {"carrier_claims.csv": cases.carrier_csv([cases.carrier_claim("C2", [], adjustment="1")])},
            {"carrier_claims.csv": cases.carrier_csv([cases.carrier_claim("C1", ["E11.9"], adjustment="2")])},
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_batches_staged_in_turn_equal_a_full_build(tmp_path, case):
    make_registry, source, batches = CASES[case]
    registry = make_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, source, batches)
    assert [r.mode for r in reports] == ["full"] + ["incremental"] * (len(batches) - 1)
    assert all(r.unaccounted == 0 for report in reports for r in report.reconciliation)
    assert sum(reports[-1].touched.values()) > 0
    if case == "orphans adopted":  # before the full build below, which empties _touched
        assert_orphans_adopted(lake_dir, reports)
    assert_equals_full_build(lake_dir, registry)
    if case == "fhir versions":  # the note is redacted with the identifiers staged before
        notes = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
        assert [n["note_text"] for n in notes] == ["[REDACTED] [REDACTED], phone [REDACTED]."]


def assert_orphans_adopted(lake_dir, reports) -> None:
    """An orphan is staged once its person arrives (the "orphans adopted" case: one staging run fewer
    than a test of its own); the run lists only what it changed."""
    assert reports[0].row_counts["visit"] == 1 and reports[1].row_counts["visit"] == 2
    touched = lake.read_table(lake.table_path(lake_dir, "staging", "_touched")).to_pylist()
    assert {(t["staging_table"], t["source_person_id"], t["change"]) for t in touched} == {
        ("person_source", "p2", "upsert"),
        ("person_pii", "p2", "upsert"),
        ("visit", "p2", "upsert"),
        ("event", "p2", "upsert"),
        ("cost", "p2", "upsert"),  # the encounter's cost
    }
    pending = lake.read_table(lake.table_path(lake_dir, "staging", "_pending_event")).to_pylist()
    assert [p["visit_key"] for p in pending] == ["e9"]  # still waits for its encounter


def test_a_merge_that_drops_a_correction_is_seen(tmp_path, monkeypatch):
    real = incremental.merge_table

    def without_event_updates(lake_dir, name, upserts, deletes, plan, key, prior=None, **kwargs):
        upserts = upserts.slice(0, 0) if name == "event" else upserts
        real(lake_dir, name, upserts, deletes, plan, key, prior, **kwargs)

    monkeypatch.setattr(incremental, "merge_table", without_event_updates)
    registry, batches = synthea_registry(), CASES["snapshot corrections"][2][:2]
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", batches)
    with pytest.raises(AssertionError):
        assert_equals_full_build(lake_dir, registry)


def test_an_interrupted_merge_leaves_readable_tables_and_the_next_run_is_full(tmp_path, monkeypatch):
    registry, calls = synthea_registry(), []
    real = incremental.merge_table

    def dies_at_the_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        real(*args, **kwargs)

    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", [cases.SYNTHEA_V1])
    before = incremental.staged_digests(lake_dir)
    monkeypatch.setattr(incremental, "merge_table", dies_at_the_third)
    land(tmp_path / "landing", "site", "b2", ONLY_P2)
    ingest_batch(lake_dir, tmp_path / "landing", registry.get("site"), "b2")
    with pytest.raises(KeyboardInterrupt):
        build_staging(lake_dir, registry)
    after = incremental.staged_digests(lake_dir)  # every table reads, at its last commit
    assert after["person_source"] != before["person_source"] and after["visit"] == before["visit"]
    monkeypatch.setattr(incremental, "merge_table", real)
    report = build_staging(lake_dir, registry)
    assert (report.mode, report.reason) == ("full", incremental_state.OUT_OF_STEP)
    assert_equals_full_build(lake_dir, registry)


def test_the_fallback_rule(tmp_path, monkeypatch):
    registry, landing = synthea_registry(), tmp_path / "landing"
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [cases.SYNTHEA_V1])
    assert reports[0].mode == "full" and "first run" in reports[0].reason
    versions = {
        n: lake.open_table(lake.table_path(lake_dir, "staging", n)).version() for n in ("event", "_touched")
    }
    again = build_staging(lake_dir, registry)  # nothing new: nothing written, the counts still reconcile
    assert again.mode == "unchanged" and all(r.unaccounted == 0 for r in again.reconciliation)
    assert {
        n: lake.open_table(lake.table_path(lake_dir, "staging", n)).version() for n in versions
    } == versions
    # a staged file landed again changed (a new version of it)
    land(landing, "site", "b1", {"conditions.csv": CONDITIONS_HEADER + "2021-01-01,,p1,e1,1234,X\n"})
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    assert build_staging(lake_dir, registry).reason.startswith("a staged file is no longer current")
    # a batch over the share threshold
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 0.01)
    land(landing, "site", "b2", ONLY_P2)
    ingest_batch(lake_dir, landing, registry.get("site"), "b2")
    assert "threshold" in build_staging(lake_dir, registry).reason
    # staging's code or the tombstones changed
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    monkeypatch.setattr(incremental_state, "staging_digest", lambda *_: "another")
    land(landing, "site", "b3", ADOPTING)
    ingest_batch(lake_dir, landing, registry.get("site"), "b3")
    assert build_staging(lake_dir, registry).reason.startswith("staging code")


# --------------------------------------------------------------------------- what only a full build stages alike

NOTE_NAMING_ZOELLA = {
    **FHIR_FIRST,
    "DocumentReference.000.ndjson": fhir.ndjson(fhir.document("d1", "Seen with Zoella Quarrington today.")),
}
RENAMED = {  # p1 renamed to the name the earlier note holds: a full build redacts it there too
    "Patient.000.ndjson": fhir.ndjson(
        fhir.patient("p1", name=[{"use": "official", "family": "Quarrington", "given": ["Zoella"]}])
    )
}


def test_new_identifiers_of_a_person_with_staged_notes_restage_everything(tmp_path):
    registry = fhir.fhir_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [NOTE_NAMING_ZOELLA, RENAMED])
    assert (reports[-1].mode, reports[-1].reason) == (
        "full",
        "a new batch changes the identifiers of persons with staged notes",
    )
    notes = lake.read_table(lake.table_path(lake_dir, "staging", "note")).to_pylist()
    assert [n["note_text"] for n in notes] == ["Seen with [REDACTED] [REDACTED] today."]
    assert_equals_full_build(lake_dir, registry)


def test_records_of_an_erased_person_restage_everything(tmp_path, monkeypatch):
    """A tombstone names an identity (Zoe Quill, 1980-01-02) no staged record has; the next batch
    renames p1 to it: a full build refuses every row of p1, earlier ones included."""
    import duckdb

    from rwe_assets.lib.governance import tombstone

    key = "t" * 32
    monkeypatch.setenv("RWE_TOMBSTONE_KEY", key)
    registry = synthea_registry()
    lake_dir, _ = stage_in_turn(tmp_path, registry, "site", [WITH_DIAGNOSIS])
    con = duckdb.connect()
    tombstone.register(con, key)
    con.execute(
        "CREATE VIEW erased AS SELECT 'other' AS source_system, 'z9' AS source_person_id, "
        "'Zoe' AS given_name, 'Quill' AS family_name, DATE '1980-01-02' AS birth_date"
    )
    tombstone.check_key(lake_dir, key, record=True)
    tombstone.add(lake_dir, con.sql(tombstone.tokens_sql(con, "erased")).to_arrow_table(), "e1")
    assert build_staging(lake_dir, registry).reason  # full: the tombstones changed

    landing = tmp_path / "landing"
    renamed = {**WITH_DIAGNOSIS, "patients.csv": PATIENTS_HEADER + patient("p1", first="Zoe", last="Quill")}
    land(landing, "site", "b9", renamed)
    ingest_batch(lake_dir, landing, registry.get("site"), "b9")
    report = build_staging(lake_dir, registry)
    assert (report.mode, report.reason) == ("full", "a new batch holds records of an erased person")
    for table in ("person_source", "visit", "event"):
        assert lake.read_table(lake.table_path(lake_dir, "staging", table)).num_rows == 0, table


def test_a_quarantined_row_without_a_record_key_is_merged_once(tmp_path):
    """A patient row without an Id has no record key: the quarantine holds it once, as a full build."""
    registry = synthea_registry()
    no_id = {"patients.csv": PATIENTS_HEADER + patient("p1") + patient("")}
    lake_dir, reports = stage_in_turn(tmp_path, registry, "site", [WITH_DIAGNOSIS, no_id])
    assert reports[-1].mode == "incremental"
    assert_equals_full_build(lake_dir, registry)
