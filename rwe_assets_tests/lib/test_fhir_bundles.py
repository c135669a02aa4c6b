"""FHIR Bundles beside bulk NDJSON, files whose content does not match their name, and non-data files
in a batch (docs/data-formats.md, "NDJSON sources" and "Bad input")."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rwe_assets.lib import lake, sources
from rwe_assets.lib.raw_ingest import Status, ingest_batch, reconcile_files
from rwe_assets.lib.sources import load_registry
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample" / "fhir13"
STAGED = ("person_source", "visit", "event", "note")


def bundle(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(resource: dict, method: str = "POST") -> dict:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": method, "url": resource["resourceType"]},
    }


def raw_rows(lake_dir: Path, entity: str) -> list[dict]:
    table = lake.read_table(lake.table_path(lake_dir, "raw", "site", entity))
    return [] if table is None else sorted(table.to_pylist(), key=lambda r: r["_line_number"])


def raw_quarantine(lake_dir: Path) -> list[dict]:
    table = lake.read_table(lake.table_path(lake_dir, "raw", "_quarantine"))
    return [] if table is None else sorted(table.to_pylist(), key=lambda r: r["_line_number"])


def ingest(tmp_path: Path, files: dict, registry=None, source: str = "site"):
    registry = registry or fhir_registry()
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    land(landing, source, "b1", files)
    report = ingest_batch(lake_dir, landing, registry.get(source), "b1")
    return lake_dir, registry, report


def by_name(report) -> dict:
    return {Path(f.relative_path).name: f for f in report.files}


# --------------------------------------------------------------------------- the sample as Bundles


def sample_resources() -> list[dict]:
    resources = []
    for path in sorted(SAMPLE_DIR.glob("*.ndjson.gz")):
        if path.name.startswith("log."):
            continue
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            resources += [json.loads(line) for line in handle if line.strip()]
    return resources


def patient_of(resource: dict) -> str | None:
    if resource["resourceType"] == "Patient":
        return resource["id"]
    for key in ("subject", "patient"):
        reference = (resource.get(key) or {}).get("reference", "")
        if reference.startswith("Patient/"):
            return reference.split("/", 1)[1]
    return None


def to_bundles(resources: list[dict]) -> dict[str, dict]:
    """Synthea's layout: one transaction Bundle per patient (its resources, references to resources of
    the same Bundle rewritten to urn:uuid:<id>), and the shared resources (organizations, locations,
    practitioners) in one batch Bundle."""
    groups: dict[str | None, list[dict]] = {}
    for resource in resources:
        groups.setdefault(patient_of(resource), []).append(resource)
    bundles = {}
    for patient, members in groups.items():
        text = json.dumps(members)
        if patient is not None:
            for member in members:
                kind, rid = member["resourceType"], member["id"]
                text = text.replace(f'"reference": "{kind}/{rid}"', f'"reference": "urn:uuid:{rid}"')
        kind = "transaction" if patient else "batch"
        name = f"Person_{patient}.json" if patient else "hospitalInformation.json"
        bundles[name] = bundle(*(entry(r) for r in json.loads(text)), kind=kind)
    return bundles


def staged_content(lake_dir: Path, name: str) -> list[dict]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", name)).to_pylist()
    return sorted(
        ({k: v for k, v in row.items() if not k.startswith("_")} for row in rows),
        key=lambda row: row["record_key"],
    )


def staging_reasons(lake_dir: Path) -> list[tuple]:
    table = lake.read_table(lake.table_path(lake_dir, "staging", "_quarantine"))
    rows = [] if table is None else table.to_pylist()
    return sorted((r["staging_table"], r["reason_code"], r["field"]) for r in rows)


def test_sample_as_one_bundle_per_patient_stages_as_the_ndjson(tmp_path):
    ndjson_files = {
        p.name: gzip.decompress(p.read_bytes()) for p in SAMPLE_DIR.glob("*.ndjson.gz")
    }  # land() gzips
    ndjson_lake, registry, ndjson_report = ingest(tmp_path / "ndjson", ndjson_files)
    bundles = to_bundles(sample_resources())
    assert len(bundles) == 14  # 13 patients and the shared resources
    # half pretty-printed, half on one line; one gzipped
    files = {
        name: json.dumps(content, indent=2 if k % 2 else None)
        for k, (name, content) in enumerate(sorted(bundles.items()))
    }
    first = sorted(files)[0]
    files[first + ".gz"] = files.pop(first)  # land() gzips names ending .gz
    bundle_lake, _, bundle_report = ingest(tmp_path / "bundles", files, registry)
    assert not ndjson_report.failed and not bundle_report.failed
    assert {f.status for f in bundle_report.files} == {Status.INGESTED}

    build_staging(ndjson_lake, registry)
    build_staging(bundle_lake, registry)
    for name in STAGED:
        expected, found = staged_content(ndjson_lake, name), staged_content(bundle_lake, name)
        assert len(expected) > 0, name
        assert [r["record_key"] for r in found] == [r["record_key"] for r in expected], name
        assert found == expected, name
    assert staging_reasons(bundle_lake) == staging_reasons(ndjson_lake)
    assert all(r.unaccounted == 0 for r in reconcile_files(bundle_lake, registry.get("site")))


# --------------------------------------------------------------------------- one Bundle by hand

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "gender": "female",
    "birthDate": "1970-01-01",
    "name": [{"family": "Doe", "given": ["Jo"]}],
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"code": "AMB"},
    "subject": {"reference": "urn:uuid:p1"},
    "period": {"start": "2020-01-01T10:00:00", "end": "2020-01-01T11:00:00"},
}
CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
    "subject": {"reference": "urn:uuid:p1"},
    "encounter": {"reference": "urn:uuid:e1"},
    "onsetDateTime": "2020-01-01T10:00:00",
}
OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
    "subject": {"reference": "urn:uuid:p1"},
    "effectiveDateTime": "2020-01-01T10:30:00",
    "valueQuantity": {"value": 1.50, "unit": "m"},
}


def test_pretty_printed_transaction_bundle_links_through_staging(tmp_path):
    delete = {"request": {"method": "DELETE", "url": "Condition/c0"}}
    content = bundle(entry(PATIENT), entry(ENCOUNTER), delete, entry(CONDITION), entry(OBSERVATION))
    text = json.dumps(content, indent=2).replace('"value": 1.5,', '"value": 1.50,')
    lake_dir, registry, report = ingest(tmp_path, {"Jo_Doe_p1.json": text})

    result = by_name(report)["Jo_Doe_p1.json"]
    assert result.status == Status.INGESTED, result.error
    assert result.rows_stored == {"patient": 1, "encounter": 1, "condition": 2, "observation": 1}
    assert (result.records_read, result.rows_quarantined) == (5, 0)
    # provenance: _line_number is the entry index + 1; the resource is kept whole, 1.50 as written; the
    # DELETE is the raw row of the resource it names (test_fhir_bundle_delete.py)
    assert [(r["resource_id"], r["_line_number"]) for r in raw_rows(lake_dir, "condition")] == [
        ("c0", 3),
        ("c1", 4),
    ]
    observation = raw_rows(lake_dir, "observation")[0]
    assert '"value":1.50' in observation["resource_json"].replace(" ", "")
    assert json.loads(observation["resource_json"]) == OBSERVATION
    assert raw_rows(lake_dir, "patient")[0]["resource_type"] == "Patient"
    assert raw_quarantine(lake_dir) == [] and result.warnings == []

    build_staging(lake_dir, registry)
    (visit,) = staged_content(lake_dir, "visit")
    events = {row["code"]: row for row in staged_content(lake_dir, "event")}
    assert visit["source_person_id"] == "p1"
    assert events["44054006"]["source_person_id"] == "p1"
    assert events["44054006"]["visit_key"] == visit["record_key"]
    assert staging_reasons(lake_dir) == []


def test_collection_searchset_and_single_resource_json_are_accepted(tmp_path):
    files = {
        "collection.json": json.dumps(bundle(entry(PATIENT), kind="collection")),
        "searchset.json.gz": json.dumps(
            bundle({"resource": ENCOUNTER, "search": {"mode": "match"}}, kind="searchset")
        ),
        "one.json": json.dumps(CONDITION, indent=1),
    }
    lake_dir, _, report = ingest(tmp_path, files)
    results = by_name(report)
    assert {name: r.rows_stored for name, r in results.items()} == {
        "collection.json": {"patient": 1},
        "searchset.json.gz": {"encounter": 1},
        "one.json": {"condition": 1},
    }
    assert [r["_line_number"] for r in raw_rows(lake_dir, "condition")] == [1]


# --------------------------------------------------------------------------- content not matching the name


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("Jo_Doe.ndjson", json.dumps(bundle(entry(PATIENT)), indent=2), "line 1"),
        ("Jo_Doe.ndjson", json.dumps(bundle(entry(PATIENT))) + "\n", "Bundle"),
        ("Jo_Doe.ndjson.gz", json.dumps(bundle(entry(PATIENT)), indent=2), "line 1"),
        ("two.json", json.dumps(PATIENT) + "\n" + json.dumps(ENCOUNTER) + "\n", "line 2"),
        ("list.json", json.dumps([PATIENT]), "JSON object"),
        ("notfhir.json", json.dumps({"id": "x"}), "resourceType"),
        ("hist.json", json.dumps(bundle(entry(PATIENT), kind="history")), "found history"),
        ("broken.json", '{"resourceType": "Bundle", "type": "transaction", "entry": [', "line 1"),
    ],
)
def test_content_not_matching_the_name_is_refused(tmp_path, name, content, expected):
    lake_dir, _, report = ingest(tmp_path, {name: content})
    (result,) = report.files
    assert result.status == Status.FAILED
    assert name in result.error and expected in result.error
    assert raw_rows(lake_dir, "patient") == [] and raw_rows(lake_dir, "other_resource") == []
    assert raw_quarantine(lake_dir) == []


def test_a_bundle_line_inside_ndjson_is_quarantined_not_loaded(tmp_path):
    content = json.dumps(PATIENT) + "\n" + json.dumps(bundle(entry(ENCOUNTER))) + "\n"
    lake_dir, _, report = ingest(tmp_path, {"mixed.ndjson": content})
    (result,) = report.files
    assert result.rows_stored == {"patient": 1}
    assert [(r["reason_code"], r["_line_number"]) for r in raw_quarantine(lake_dir)] == [
        ("BUNDLE_IN_NDJSON", 2)
    ]


# --------------------------------------------------------------------------- non-data files


NON_DATA = {
    "LICENSE": "Apache License 2.0\n",
    "README.md": "# export\n",
    "readme.txt": "about\n",
    "Terms.pdf": b"%PDF-1.4\n",
}


def test_non_data_files_in_a_csv_batch_are_skipped_and_recorded(tmp_path, registry):
    files = {"patients.csv": "Id,BIRTHDATE,FIRST\np1,1970-01-01,Jo\n", **NON_DATA}
    lake_dir, _, report = ingest(tmp_path, files, registry, source="clinic")
    results = by_name(report)
    assert not report.failed
    assert results["patients.csv"].status == Status.INGESTED
    assert {name: results[name].status for name in NON_DATA} == dict.fromkeys(NON_DATA, Status.IGNORED)
    manifest = lake.read_table(lake.table_path(lake_dir, "raw", "_manifest")).to_pylist()
    assert sorted(Path(r["relative_path"]).name for r in manifest if r["status"] == Status.IGNORED) == sorted(
        NON_DATA
    )


def test_non_data_files_in_an_ndjson_batch_are_skipped_and_recorded(tmp_path):
    files = {"Patient.000.ndjson": json.dumps(PATIENT) + "\n", "log.ndjson.gz": '{"x": 1}\n', **NON_DATA}
    _, _, report = ingest(tmp_path, files)
    results = by_name(report)
    assert not report.failed
    assert results["Patient.000.ndjson"].rows_stored == {"patient": 1}
    skipped = {name for name, r in results.items() if r.status == Status.IGNORED}
    assert skipped == {"log.ndjson.gz", *NON_DATA}


def test_a_data_looking_file_matching_no_entity_still_fails(tmp_path, registry):
    files = {
        "patients.csv": "Id,BIRTHDATE,FIRST\np1,1970-01-01,Jo\n",
        "visits.csv": "a\n1\n",
        "LICENSE": "x\n",
    }
    _, _, report = ingest(tmp_path, files, registry, source="clinic")
    assert [Path(f.relative_path).name for f in report.failed] == ["visits.csv"]
    assert "matches no entity" in report.failed[0].error


def test_non_data_patterns_are_defined_once_and_extended_per_source(registry):
    clinic = registry.get("clinic")
    assert clinic.ignore_files == ()
    for name in ("LICENSE", "license.txt", "README", "README.md", ".DS_Store", "log.ndjson", "x.pdf"):
        assert clinic.is_ignored(name), name
    assert not clinic.is_ignored("patients.csv")
    lab = load_registry().get("lab")
    assert lab.is_ignored("calls.vcf.gz.tbi") and lab.is_ignored("README.md")
    assert "log.ndjson" in sources.DEFAULT_NON_DATA_FILES
