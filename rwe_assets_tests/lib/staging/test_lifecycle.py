"""Record lifecycle in staging (lib/staging/lifecycle.py), on small extracts written here: corrections,
removals, retractions and voids leave the staged tables equal to staging the corrected extract alone,
and reconciliation counts what was superseded and retired, by reason."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.model import TABLES
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_synpuf as synpuf
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    MEDICATIONS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

OBSERVATIONS_HEADER = "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n"
PROVENANCE = ("_source_file", "_line_number", "_batch_id", "_ingested_at")


def stage(tmp_path: Path, registry, source: str, batches: list[dict[str, str]]):
    """Land and ingest each extract as its own batch (b1, b2, ...), then stage."""
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    for number, files in enumerate(batches, start=1):
        land(landing, source, f"b{number}", files)
        ingest_batch(lake_dir, landing, registry.get(source), f"b{number}")
    return lake_dir, build_staging(lake_dir, registry)


def staged_facts(lake_dir: Path) -> dict[str, Counter]:
    """Every staging table as a multiset of rows without their batch, file and line."""
    facts = {}
    for table in TABLES:
        rows = lake.read_table(lake.table_path(lake_dir, "staging", table.name)).to_pylist()
        facts[table.name] = Counter(
            tuple((k, repr(v) if isinstance(v, list) else v) for k, v in r.items() if k not in PROVENANCE)
            for r in rows
        )
    return facts


def reasons(lake_dir: Path, outcome_table: str) -> Counter:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", outcome_table)).to_pylist()
    return Counter((r["staging_table"], r["_batch_id"], r["reason_code"]) for r in rows)


def assert_same_as_alone(tmp_path: Path, registry, source: str, batches: list[dict], alone: dict):
    """Staging the batches in turn gives the tables of staging `alone` (the corrected extract) once."""
    lake_dir, report = stage(tmp_path / "sequence", registry, source, batches)
    expected_dir, _ = stage(tmp_path / "alone", registry, source, [alone])
    assert staged_facts(lake_dir) == staged_facts(expected_dir)
    assert all(r.unaccounted == 0 for r in report.reconciliation)
    return lake_dir, report


# --- Synthea CSV: a snapshot source -------------------------------------------------------------

SYNTHEA_V1 = {
    "patients.csv": PATIENTS_HEADER + patient("p1") + patient("p2", first="Bo"),
    "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1") + encounter("e2", "p2"),
    "conditions.csv": CONDITIONS_HEADER
    + "2020-01-01,,p1,e1,44054006,Diabetes\n"
    + "2020-01-01,,p1,e1,38341003,Hypertension\n"
    + "2020-01-01,,p2,e2,44054006,Diabetes\n",
    "observations.csv": OBSERVATIONS_HEADER
    + "2020-01-01T10:00:00Z,p1,e1,vital-signs,8302-2,Body Height,170.5,cm,numeric\n"
    + "2020-01-01T10:00:00Z,p2,e2,vital-signs,8302-2,Body Height,180.0,cm,numeric\n",
    # two prescriptions of one drug started together: one natural key, two records (real Synthea does this)
    "medications.csv": MEDICATIONS_HEADER
    + "2020-01-01T10:00:00Z,2020-01-01T10:00:00Z,p1,pay1,e1,197361,Amlodipine,1,0,1,1,,\n"
    + "2020-01-01T10:00:00Z,2021-01-01T10:00:00Z,p1,pay1,e1,197361,Amlodipine,1,0,12,12,,\n",
}


def corrected(files: dict[str, str], **replacements: tuple[str, str]) -> dict[str, str]:
    out = dict(files)
    for name, (old, new) in replacements.items():
        assert old in out[f"{name}.csv"]
        out[f"{name}.csv"] = out[f"{name}.csv"].replace(old, new)
    return out


def test_a_corrected_value_end_date_and_removed_row_replace_the_snapshot(tmp_path):
    v2 = corrected(
        SYNTHEA_V1,
        observations=("170.5,cm", "171.5,cm"),  # a corrected value
        conditions=("2020-01-01,,p1,e1,38341003", "2020-01-01,2020-06-01,p1,e1,38341003"),  # an end date
        medications=(
            "2020-01-01T10:00:00Z,2021-01-01T10:00:00Z,p1,pay1,e1,197361,Amlodipine,1,0,12,12,,\n",
            "",
        ),
    )
    lake_dir, report = assert_same_as_alone(tmp_path, synthea_registry(), "site", [SYNTHEA_V1, v2], v2)
    # b1's rows the correction replaced are superseded, the removed prescription (#2 of its key) retired,
    # and its money with it
    assert reasons(lake_dir, "_retired") == Counter(
        {("event", "b1", "ABSENT_FROM_SNAPSHOT"): 1, ("cost", "b1", "ABSENT_FROM_SNAPSHOT"): 1}
    )
    superseded = reasons(lake_dir, "_merged")
    assert superseded[("event", "b1", "SUPERSEDED")] == 2  # the observation and the condition
    assert superseded[("event", "b1", "DUPLICATE_IDENTICAL")] == 4  # unchanged: 2 diagnoses, 1 height, 1 drug
    by_entity = {(r.table, r.source_entity): r for r in report.reconciliation}
    assert by_entity[("event", "medications")].retired == 1
    assert by_entity[("event", "observations")].merged == 2


def test_rows_sharing_a_natural_key_are_numbered_records(tmp_path):
    lake_dir, _ = stage(tmp_path, synthea_registry(), "site", [SYNTHEA_V1])
    drugs = [
        e
        for e in lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
        if e["code"] == "197361"
    ]
    assert len(drugs) == 2
    first, second = sorted(drugs, key=lambda e: e["_line_number"])
    assert second["record_key"] == first["record_key"] + "#2"
    # each prescription's money points at its own event (the cost row takes the key of its line's event)
    costs = lake.read_table(lake.table_path(lake_dir, "staging", "cost")).to_pylist()
    paid = {c["event_key"]: c["total_cost"] for c in costs if c["_source_entity"] == "medications"}
    assert paid == {first["record_key"]: 1.0, second["record_key"]: 12.0}


def test_a_snapshot_of_some_persons_leaves_the_others_untouched(tmp_path):
    only_p2 = {
        "patients.csv": PATIENTS_HEADER + patient("p2", first="Bo"),
        "encounters.csv": ENCOUNTERS_HEADER + encounter("e2", "p2"),
        "conditions.csv": CONDITIONS_HEADER,  # p2's diagnosis withdrawn
        "observations.csv": OBSERVATIONS_HEADER
        + "2020-01-01T10:00:00Z,p2,e2,vital-signs,8302-2,Body Height,181.0,cm,numeric\n",
    }
    lake_dir, report = stage(tmp_path / "two", synthea_registry(), "site", [SYNTHEA_V1, only_p2])
    first_dir, _ = stage(tmp_path / "one", synthea_registry(), "site", [SYNTHEA_V1])

    def of_person(facts, person):
        return {
            t: Counter({r: n for r, n in rows.items() if ("source_person_id", person) in r})
            for t, rows in facts.items()
        }

    assert of_person(staged_facts(lake_dir), "p1") == of_person(staged_facts(first_dir), "p1")
    events_p2 = [dict(r) for r in staged_facts(lake_dir)["event"] if ("source_person_id", "p2") in r]
    assert [(e["code"], e["value_as_number"]) for e in events_p2] == [("8302-2", 181.0)]
    # b2 has no medications file: it says nothing about p2's prescriptions (p2 has none anyway)
    assert reasons(lake_dir, "_retired") == Counter({("event", "b1", "ABSENT_FROM_SNAPSHOT"): 1})
    assert all(r.unaccounted == 0 for r in report.reconciliation)


def test_a_snapshot_batch_without_an_entity_file_keeps_that_entity(tmp_path):
    without_medications = {k: v for k, v in SYNTHEA_V1.items() if k != "medications.csv"}
    lake_dir, _ = stage(tmp_path, synthea_registry(), "site", [SYNTHEA_V1, without_medications])
    codes = Counter(
        e["code"] for e in lake.read_table(lake.table_path(lake_dir, "staging", "event")).to_pylist()
    )
    assert codes["197361"] == 2
    assert not reasons(lake_dir, "_retired")


# --- FHIR: an incremental source -----------------------------------------------------------------


def fhir_extract(*conditions: dict, observations: tuple[dict, ...] = ()) -> dict[str, str]:
    files = {
        "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
        "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
        "Condition.000.ndjson": fhir.ndjson(*conditions),
    }
    if observations:
        files["Observation.000.ndjson"] = fhir.ndjson(*observations)
    return files


def blood_pressure(oid: str, *systolic_diastolic: tuple[str, float]) -> dict:
    components = [
        {"code": fhir.cc(fhir.LOINC, code), "valueQuantity": {"value": value, "unit": "mm[Hg]"}}
        for code, value in systolic_diastolic
    ]
    return fhir.observation(oid, code=fhir.cc(fhir.LOINC, "85354-9"), component=components)


def test_an_entered_in_error_resource_retracts_the_record(tmp_path):
    registry = fhir.fhir_registry()
    c1, c2 = fhir.condition("c1"), fhir.condition("c2", code=fhir.cc(fhir.SNOMED, "38341003"))
    retraction = {
        "Condition.000.ndjson": fhir.ndjson(
            fhir.condition("c1", verificationStatus={"coding": [{"code": "entered-in-error"}]})
        )
    }
    lake_dir, report = assert_same_as_alone(
        tmp_path, registry, "site", [fhir_extract(c1, c2), retraction], fhir_extract(c2)
    )
    assert reasons(lake_dir, "_merged") == Counter({("event", "b1", "SUPERSEDED"): 1})
    assert reasons(lake_dir, "_retired") == Counter({("event", "b2", "ENTERED_IN_ERROR"): 1})
    assert report.retired_reasons == {("event", "ENTERED_IN_ERROR"): 1}


def test_a_resent_resource_with_fewer_parts_retires_the_missing_part(tmp_path):
    registry = fhir.fhir_registry()
    full = fhir_extract(observations=(blood_pressure("o1", ("8480-6", 120.0), ("8462-4", 80.0)),))
    resent = {"Observation.000.ndjson": fhir.ndjson(blood_pressure("o1", ("8480-6", 125.0)))}
    alone = fhir_extract(observations=(blood_pressure("o1", ("8480-6", 125.0)),))
    lake_dir, _ = assert_same_as_alone(tmp_path, registry, "site", [full, resent], alone)
    assert reasons(lake_dir, "_retired") == Counter({("event", "b1", "ABSENT_FROM_NEWER_VERSION"): 1})


# --- Claims: an incremental source with voids -------------------------------------------------


def carrier_claim(claim: str, codes: list[str], adjustment: str = "") -> dict:
    row = {"DESYNPUF_ID": "B1", "CLM_ID": claim, "CLM_FROM_DT": "20200301", "CLM_THRU_DT": "20200301",
           "PRF_PHYSN_NPI_1": "1234567890", "HCPCS_CD_1": "99213", "LINE_NCH_PMT_AMT_1": "50",
           "CLM_ADJSMT_TYPE_CD": adjustment}  # fmt: skip
    row.update({f"ICD9_DGNS_CD_{i}": code for i, code in enumerate(codes, start=1)})
    return row


def claims_extract(*claims: dict) -> dict[str, str]:
    beneficiaries = [synpuf.beneficiary("B1", {m: "H1" for m in range(1, 13)})]
    return {
        "carrier_claims.csv": carrier_csv(list(claims)),
        "DE1_0_2020_Beneficiary_Summary_File.csv": synpuf.csv_text("Beneficiary", beneficiaries),
    }


def carrier_csv(rows: list[dict]) -> str:
    columns = synpuf.header("Carrier") + ["CLM_ADJSMT_TYPE_CD"]
    lines = [",".join(columns)] + [",".join(row.get(c, "") for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def test_a_void_claim_cancels_every_row_of_the_claim(tmp_path):
    kept, voided = carrier_claim("C1", ["I10"]), carrier_claim("C2", ["E11.9", "I10"])
    void = {"carrier_claims.csv": carrier_csv([carrier_claim("C2", [], adjustment="1")])}
    lake_dir, _ = assert_same_as_alone(
        tmp_path, synpuf.payer_registry(), "payer", [claims_extract(kept, voided), void], claims_extract(kept)
    )
    retired = reasons(lake_dir, "_retired")
    assert retired[("visit", "b2", "VOIDED")] == 1 and retired[("cost", "b2", "VOIDED")] == 1
    # C2's two diagnoses and its HCPCS code: the void's one event row supersedes one, the others are gone
    assert retired[("event", "b1", "ABSENT_FROM_NEWER_VERSION")] == 2
    assert retired[("event", "b2", "VOIDED")] == 1


def test_an_adjusted_claim_replaces_the_claim_whole(tmp_path):
    original, adjusted = carrier_claim("C1", ["E11.9", "I10"]), carrier_claim("C1", ["E11.9"], adjustment="2")
    resent = {"carrier_claims.csv": carrier_csv([adjusted])}
    lake_dir, _ = assert_same_as_alone(
        tmp_path,
        synpuf.payer_registry(),
        "payer",
        [claims_extract(original), resent],
        claims_extract(adjusted),
    )
    assert reasons(lake_dir, "_retired") == Counter({("event", "b1", "ABSENT_FROM_NEWER_VERSION"): 1})


# --- the bundled public Synthea sample ----------------------------------------------------------


def synthea_sample_corrected() -> tuple[dict[str, str], dict[str, str]]:
    """The bundled 27-patient Synthea export and a corrected copy: one observation value, one
    condition's end date, one prescription removed (the first row of each file that fits)."""
    sample = REPO_DIR / "data" / "sample" / "synthea27"
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(sample.glob("*.csv"))}
    fixed = dict(files)
    fixed["observations.csv"] = _edit_first(
        files["observations.csv"], "TYPE", "numeric", "VALUE", lambda v: f"{float(v) + 1}"
    )
    fixed["conditions.csv"] = _edit_first(files["conditions.csv"], "STOP", "", "STOP", lambda _: "2023-01-01")
    header, _removed, rest = files["medications.csv"].split("\n", 2)
    fixed["medications.csv"] = header + "\n" + rest
    return files, fixed


def _edit_first(text: str, match_column: str, match_value: str, column: str, change) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    row = next(r for r in rows[1:] if r[header.index(match_column)] == match_value)
    row[header.index(column)] = change(row[header.index(column)])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_a_corrected_export_of_the_public_sample_replaces_the_first(tmp_path):
    original, fixed = synthea_sample_corrected()
    lake_dir, _ = assert_same_as_alone(tmp_path, synthea_registry(), "site", [original, fixed], fixed)
    changed = Counter(
        (t, reason)
        for t, _, reason in (reasons(lake_dir, "_merged") + reasons(lake_dir, "_retired")).elements()
        if reason != "DUPLICATE_IDENTICAL"
    )
    assert changed == Counter(
        {
            ("event", "SUPERSEDED"): 2,
            ("event", "ABSENT_FROM_SNAPSHOT"): 1,
            ("cost", "ABSENT_FROM_SNAPSHOT"): 1,
        }
    )
