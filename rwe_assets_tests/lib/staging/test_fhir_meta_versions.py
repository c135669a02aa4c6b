"""Practitioner, Organization, Coverage, Claim, ExplanationOfBenefit and DocumentReference read
meta.lastUpdated like the templated events (lib/sql/staging/fhir_r4/README.md, "Versions"): two
versions of one resource in one batch resolve to the later one, whole, the other SUPERSEDED, not
quarantined as DUPLICATE_ID; the template's schema gets meta from sql_templates.TEMPLATE_SCHEMA."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake
from rwe_assets.lib.staging import sql_templates
from rwe_assets_tests.lib.staging import test_fhir_cost_coverage as money
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir

EARLY, LATE = "2020-03-01T10:00:00Z", "2020-03-02T10:00:00Z"


def _versioned(resource: dict, at: str, **changes) -> dict:
    return resource | changes | {"meta": {"lastUpdated": at}}


def _pair(resource: dict, **changes) -> list[dict]:
    """The earlier version first in the file: line order alone would keep it."""
    return [_versioned(resource, EARLY), _versioned(resource, LATE, **changes)]


PRACTITIONER = {"resourceType": "Practitioner", "id": "dr1", "gender": "male"}
ORGANIZATION = {"resourceType": "Organization", "id": "org1", "name": "Clinic"}
FILES = {
    "Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
    "Encounter.000.ndjson": fhir.ndjson(fhir.encounter("e1")),
    "Practitioner.000.ndjson": fhir.ndjson(*_pair(PRACTITIONER, gender="female")),
    "Organization.000.ndjson": fhir.ndjson(*_pair(ORGANIZATION, name="Clinic North")),
    "Coverage.000.ndjson": fhir.ndjson(*_pair(money.coverage("cov1"), period={"start": "2019-06-01"})),
    "Claim.000.ndjson": fhir.ndjson(*_pair(money.claim("cl1"), total=money.money(250.0))),
    "ExplanationOfBenefit.000.ndjson": fhir.ndjson(
        *_pair(money.eob("eob1", None), payment={"amount": money.money(90.0)})
    ),
    "DocumentReference.000.ndjson": fhir.ndjson(
        *_pair(fhir.document("d1", "first text"), date="2020-03-02T08:00:00-05:00")
    ),
}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    lake_dir, report = fhir.stage(tmp_path_factory.mktemp("meta_versions"), fhir.fhir_registry(), FILES)
    assert all(r.unaccounted == 0 for r in report.reconciliation)
    return lake_dir


def _one(lake_dir, table: str, key: str) -> dict:
    (row,) = [r for r in fhir.staged(lake_dir, table) if r["record_key"] == key]
    return row


def test_the_later_version_wins_whole(staged):
    assert _one(staged, "provider", "dr1")["gender_source_value"] == "female"
    assert _one(staged, "care_site", "org1")["care_site_name"] == "Clinic North"
    assert str(_one(staged, "enrollment", "Coverage/cov1")["start_date"]) == "2019-06-01"
    assert _one(staged, "cost", "Claim/cl1")["total_charge"] == 250.0
    assert _one(staged, "cost", "ExplanationOfBenefit/eob1")["paid_by_payer"] == 90.0
    assert str(_one(staged, "note", "d1")["note_datetime"]) == "2020-03-02 08:00:00"


def test_the_earlier_version_is_superseded_not_a_conflicting_id(staged):
    rows = lake.read_table(lake.table_path(staged, "staging", "_merged")).to_pylist()
    merged = Counter((r["staging_table"], r["reason_code"]) for r in rows)
    assert merged == Counter(
        {("provider", "SUPERSEDED"): 1, ("care_site", "SUPERSEDED"): 1, ("enrollment", "SUPERSEDED"): 1,
         ("cost", "SUPERSEDED"): 2, ("note", "SUPERSEDED"): 1}
    )  # fmt: skip
    assert "DUPLICATE_ID" not in {r[3] for r in fhir.quarantined(staged)}


@pytest.mark.parametrize("schema", ['{"meta": {"versionId": "VARCHAR"}}', '["VARCHAR"]', "{not json"])
def test_a_row_schema_that_is_no_object_or_declares_meta_is_an_error(schema):
    with pytest.raises(ConfigError, match=r"_events.yaml \[condition\]: expected schema"):
        sql_templates._schema("condition", schema)
