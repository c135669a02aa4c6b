"""Record lifecycle through to the CDM: after a correction, a removal, a retraction or a void, the CDM
equals the CDM built from the corrected extract alone, by the comparison tool (lib/cdm/compare/),
whatever surrogate ids each build gave."""

from __future__ import annotations

from pathlib import Path

import duckdb

from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging import test_lifecycle as lifecycle
from rwe_assets_tests.lib.staging import test_synpuf as synpuf
from rwe_assets_tests.lib.staging.test_build import synthea_registry


def assert_cdm_same_as_alone(tmp_path: Path, registry, source: str, batches: list[dict], alone: dict) -> Path:
    sequence = build(tmp_path / "sequence", registry, source, batches)
    expected = build(tmp_path / "alone", registry, source, [alone])
    comparison = compare_cdms(sequence, expected)
    assert comparison.same, format_comparison(comparison)
    assert comparison.table("person").rows_a > 0
    assert not [k for k in outcomes(sequence) if k[0] == "quarantined"]  # retired, never lost as orphans
    return sequence


def outcomes(cdm: Path) -> dict[tuple[str, str, str], int]:
    with duckdb.connect(str(cdm), read_only=True) as con:
        rows = con.execute(
            "SELECT outcome, staging_table, reason_code, sum(row_count) FROM results.staging_outcomes "
            "GROUP BY ALL"
        ).fetchall()
    return {(o, t, r): n for o, t, r, n in rows}


def test_synthea_corrections_and_a_removal_give_the_corrected_cdm(tmp_path):
    v2 = lifecycle.corrected(
        lifecycle.SYNTHEA_V1,
        observations=("170.5,cm", "171.5,cm"),
        conditions=("2020-01-01,,p1,e1,38341003", "2020-01-01,2020-06-01,p1,e1,38341003"),
        medications=(
            "2020-01-01T10:00:00Z,2021-01-01T10:00:00Z,p1,pay1,e1,197361,Amlodipine,1,0,12,12,,\n",
            "",
        ),
    )
    cdm = assert_cdm_same_as_alone(tmp_path, synthea_registry(), "site", [lifecycle.SYNTHEA_V1, v2], v2)
    counts = outcomes(cdm)
    assert counts[("merged", "event", "SUPERSEDED")] == 2
    assert counts[("retired", "event", "ABSENT_FROM_SNAPSHOT")] == 1


def test_the_comparison_sees_a_stale_fact(tmp_path):
    """The tool this file relies on is not blind: the uncorrected CDM differs from the corrected one."""
    v2 = lifecycle.corrected(lifecycle.SYNTHEA_V1, observations=("170.5,cm", "171.5,cm"))
    stale = build(tmp_path / "v1", synthea_registry(), "site", [lifecycle.SYNTHEA_V1])
    fixed = build(tmp_path / "v2", synthea_registry(), "site", [v2])
    comparison = compare_cdms(stale, fixed)
    assert [t.table for t in comparison.differing] == ["measurement"]
    assert comparison.table("measurement").only_in_a == comparison.table("measurement").only_in_b == 1


def test_a_snapshot_of_one_person_gives_the_cdm_of_the_merged_extract(tmp_path):
    v1 = lifecycle.SYNTHEA_V1
    only_p2 = {
        "patients.csv": lifecycle.PATIENTS_HEADER + lifecycle.patient("p2", first="Bo"),
        "encounters.csv": lifecycle.ENCOUNTERS_HEADER + lifecycle.encounter("e2", "p2"),
        "conditions.csv": lifecycle.CONDITIONS_HEADER,
        "observations.csv": lifecycle.OBSERVATIONS_HEADER
        + "2020-01-01T10:00:00Z,p2,e2,vital-signs,8302-2,Body Height,181.0,cm,numeric\n",
    }
    # what the site's full extract would now say: p1 as before, p2 as in the new batch
    merged = lifecycle.corrected(
        v1,
        conditions=("2020-01-01,,p2,e2,44054006,Diabetes\n", ""),
        observations=("180.0,cm", "181.0,cm"),
    )
    assert_cdm_same_as_alone(tmp_path, synthea_registry(), "site", [v1, only_p2], merged)


def test_an_entered_in_error_condition_leaves_the_cdm(tmp_path):
    c1, c2 = fhir.condition("c1"), fhir.condition("c2", code=fhir.cc(fhir.SNOMED, "38341003"))
    retracted = fhir.condition("c1", verificationStatus={"coding": [{"code": "entered-in-error"}]})
    retraction = {"Condition.000.ndjson": fhir.ndjson(retracted)}
    cdm = assert_cdm_same_as_alone(
        tmp_path,
        fhir.fhir_registry(),
        "site",
        [lifecycle.fhir_extract(c1, c2), retraction],
        lifecycle.fhir_extract(c2),
    )
    assert outcomes(cdm)[("retired", "event", "ENTERED_IN_ERROR")] == 1


def test_a_void_claim_leaves_the_cdm(tmp_path):
    kept, voided = lifecycle.carrier_claim("C1", ["I10"]), lifecycle.carrier_claim("C2", ["E11.9", "I10"])
    void = {"carrier_claims.csv": lifecycle.carrier_csv([lifecycle.carrier_claim("C2", [], adjustment="1")])}
    cdm = assert_cdm_same_as_alone(
        tmp_path,
        synpuf.payer_registry(),
        "payer",
        [lifecycle.claims_extract(kept, voided), void],
        lifecycle.claims_extract(kept),
    )
    counts = outcomes(cdm)
    assert counts[("retired", "visit", "VOIDED")] == counts[("retired", "cost", "VOIDED")] == 1
    assert counts[("retired", "event", "ABSENT_FROM_NEWER_VERSION")] == 2
