"""Raw ingest: values and provenance, idempotency, versions, bad input, reconciliation."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from hypothesis import given
from hypothesis import strategies as st

from rwe_assets.lib import lake, raw_ingest
from rwe_assets.lib.raw_ingest import Status, ingest_batch, line_numbers, read_manifest, reconcile_files
from rwe_assets_tests.conftest import land

PATIENTS = 'Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,,"Bo, Jr"\np3,1999-12-31,Cy\n'


def raw(lake_dir, source, entity):
    return lake.read_table(lake.table_path(lake_dir, "raw", source, entity))


def quarantine(lake_dir):
    return lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE))


def only_file(report):
    assert len(report.files) == 1
    return report.files[0]


def test_values_are_kept_as_text_with_provenance(registry, dirs):
    lake_dir, landing = dirs
    folder = land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    report = ingest_batch(lake_dir, landing, registry.get("clinic"), "b1", run_id="r1")

    result = only_file(report)
    assert (result.status, result.records_read, result.rows_stored, result.rows_quarantined) == (
        Status.INGESTED,
        3,
        {"patients": 3},
        0,
    )
    table = raw(lake_dir, "clinic", "patients").sort_by("_line_number").to_pydict()
    assert table["Id"] == ["p1", "p2", "p3"]
    assert table["BIRTHDATE"] == ["2001-02-03", "", "1999-12-31"]  # empty stays empty text, not NULL
    assert table["FIRST"] == ["Ann", "Bo, Jr", "Cy"]
    assert table["_line_number"] == [2, 3, 4]
    assert set(table["_batch_id"]) == {"b1"}
    assert set(table["_source_file"]) == {"clinic/b1/patients.csv"}
    expected_sha = hashlib.sha256((folder / "patients.csv").read_bytes()).hexdigest()
    assert set(table["_file_sha256"]) == {expected_sha}
    manifest = read_manifest(lake_dir).to_pylist()
    assert [(m["relative_path"], m["status"], m["rows_stored"], m["lines_read"]) for m in manifest] == [
        ("clinic/b1/patients.csv", "ingested", 3, 4)
    ]


def test_rerunning_a_batch_or_landing_the_same_file_again_adds_nothing(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    source = registry.get("clinic")
    ingest_batch(lake_dir, landing, source, "b1")

    assert ingest_batch(lake_dir, landing, source, "b1").files == []  # same batch again: nothing to do
    land(landing, "clinic", "b2", {"patients.csv": PATIENTS})  # same bytes, new batch
    again = only_file(ingest_batch(lake_dir, landing, source, "b2"))

    assert (again.status, again.total_stored) == (Status.DUPLICATE, 0)
    assert raw(lake_dir, "clinic", "patients").num_rows == 3
    assert [m["status"] for m in read_manifest(lake_dir).to_pylist()] == ["ingested", "duplicate"]


def test_a_changed_file_is_a_new_version(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    source = registry.get("clinic")
    first = only_file(ingest_batch(lake_dir, landing, source, "b1"))
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS + "p4,2020-01-01,Di\n"})
    second = only_file(ingest_batch(lake_dir, landing, source, "b1"))

    assert (second.file_version, second.supersedes_sha256) == (2, first.file_sha256)
    counts = pc.value_counts(raw(lake_dir, "clinic", "patients").column("_file_sha256")).to_pylist()
    assert sorted(c["counts"] for c in counts) == [3, 4]  # raw is append-only: both versions kept


def test_ragged_rows_are_quarantined_and_line_numbers_skip_them(registry, dirs):
    lake_dir, landing = dirs
    content = (
        "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,SECRET-NAME\n\np3,1999-12-31,Cy,extra\np4,2000-01-01,Di\n"
    )
    land(landing, "clinic", "b1", {"patients.csv": content})
    result = only_file(ingest_batch(lake_dir, landing, registry.get("clinic"), "b1"))

    assert (result.records_read, result.total_stored, result.rows_quarantined) == (4, 2, 2)
    table = raw(lake_dir, "clinic", "patients").sort_by("_line_number").to_pydict()
    assert list(zip(table["Id"], table["_line_number"], strict=True)) == [("p1", 2), ("p4", 6)]
    bad = quarantine(lake_dir).sort_by("_line_number").to_pydict()
    assert bad["_line_number"] == [3, 5]
    assert bad["reason_code"] == ["MISSING_COLUMNS", "TOO_MANY_COLUMNS"]
    assert bad["raw_text"][0] == "p2,SECRET-NAME"  # the row itself is kept, in the raw layer
    assert not any("SECRET" in (d or "") for d in bad["detail"] + bad["field"])  # reasons never quote values
    assert all(r.unaccounted == 0 for r in reconcile_files(lake_dir, registry.get("clinic")))


def test_invalid_encoding_in_a_row_is_quarantined(registry, dirs):
    lake_dir, landing = dirs
    land(
        landing,
        "clinic",
        "b1",
        {"patients.csv": b"Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,2001-02-03,B\xffo\n"},
    )
    result = only_file(ingest_batch(lake_dir, landing, registry.get("clinic"), "b1"))

    assert (result.total_stored, result.rows_quarantined) == (1, 1)
    bad = quarantine(lake_dir).to_pylist()[0]
    assert (bad["reason_code"], bad["_line_number"], bad["field"]) == ("INVALID_ENCODING", 3, "FIRST")


@pytest.mark.parametrize(
    ("name", "content", "problem", "line"),
    [
        ("patients.csv", b"", "empty file", 1),
        ("patients.csv", b"\n\n", "empty file", 1),
        ("patients.csv", b"Id,FIRST\np1,Ann\n", "expected columns BIRTHDATE", 1),
        ("patients.csv", b"Id,BIRTHDATE,FIRST,FIRST\np1,a,b,c\n", "more than once", 1),
        ("patients.csv", b"Id,BIRTHD\xe9TE,FIRST\np1,a,b\n", "header is not valid utf-8", 1),
        ("patients.csv", b"Id,BIRTHDATE,FIRST,_line_number\np1,a,b,c\n", "reserved", 1),
        ("unknown.csv", b"a,b\n1,2\n", "matches no entity", None),
    ],
)
def test_unreadable_files_fail_with_file_and_line_and_write_nothing(
    registry, dirs, name, content, problem, line
):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {name: content})
    result = only_file(ingest_batch(lake_dir, landing, registry.get("clinic"), "b1"))

    assert result.status == Status.FAILED
    assert problem in result.error
    assert result.error.startswith(f"clinic/b1/{name}" + (f" line {line}" if line else ""))
    assert raw(lake_dir, "clinic", "patients") is None
    assert read_manifest(lake_dir).to_pylist()[0]["status"] == "failed"


def test_a_file_sent_without_its_header_is_refused_without_quoting_its_first_row(registry, dirs):
    """The first data row read as a header repeats a value (a person whose family name is their given
    name): the error names positions, never the value."""
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": b"p1,2001-02-03,Quackenbush,Quackenbush\n"})
    result = only_file(ingest_batch(lake_dir, landing, registry.get("clinic"), "b1"))

    assert result.status == Status.FAILED
    assert "positions [3, 4]" in result.error
    assert "quackenbush" not in result.error.lower()


def test_a_truncated_gzip_fails_before_anything_is_written(registry, dirs):
    lake_dir, landing = dirs
    whole = gzip.compress(("Id,BIRTHDATE,FIRST\n" + "p,2000-01-01,X\n" * 5000).encode())
    folder = land(landing, "clinic", "b1", {})
    (folder / "patients.csv.gz").write_bytes(whole[: len(whole) // 2])
    result = only_file(ingest_batch(lake_dir, landing, registry.get("clinic"), "b1"))

    assert result.status == Status.FAILED
    assert result.error.startswith("clinic/b1/patients.csv.gz line ")
    assert "truncated or corrupt gzip" in result.error
    assert raw(lake_dir, "clinic", "patients") is None


def test_gzip_files_are_read(registry, dirs):
    lake_dir, landing = dirs
    land(
        landing,
        "clinic",
        "b1",
        {"patients.csv.gz": PATIENTS, "my_conditions_2024.csv": "PATIENT,CODE\np1,C1\n"},
    )
    report = ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    assert {f.relative_path: f.rows_stored for f in report.files} == {
        "clinic/b1/my_conditions_2024.csv": {"conditions": 1},
        "clinic/b1/patients.csv.gz": {"patients": 3},
    }


def test_good_files_of_a_batch_are_kept_when_another_fails(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS, "conditions.csv": "PATIENT\np1\n"})
    report = ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    assert [f.relative_path for f in report.failed] == ["clinic/b1/conditions.csv"]
    assert raw(lake_dir, "clinic", "patients").num_rows == 3


def test_a_crash_before_the_manifest_is_written_does_not_duplicate_rows(registry, dirs, monkeypatch):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    source = registry.get("clinic")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(raw_ingest, "_append_manifest", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest_batch(lake_dir, landing, source, "b1")
    assert raw(lake_dir, "clinic", "patients").num_rows == 3  # written, but the manifest does not vouch
    assert read_manifest(lake_dir).num_rows == 0

    ingest_batch(lake_dir, landing, source, "b1")
    assert raw(lake_dir, "clinic", "patients").num_rows == 3
    assert [r.unaccounted for r in reconcile_files(lake_dir, source)] == [0]


def test_a_failure_while_streaming_commits_nothing(registry, dirs, monkeypatch):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": "Id,BIRTHDATE,FIRST\n" + "p,2000-01-01,X\n" * 50})
    monkeypatch.setattr(raw_ingest, "CSV_BATCH_ROWS", 10)
    original = raw_ingest.line_numbers
    calls = {"n": 0}

    def fail_on_third_batch(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(*args)

    monkeypatch.setattr(raw_ingest, "line_numbers", fail_on_third_batch)
    with pytest.raises(Exception, match="disk full"):
        ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    assert raw(lake_dir, "clinic", "patients") is None


def test_reconciliation_finds_a_lost_row(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    source = registry.get("clinic")
    ingest_batch(lake_dir, landing, source, "b1")
    DeltaTable(str(lake.table_path(lake_dir, "raw", "clinic", "patients"))).delete("_line_number = 3")

    (row,) = reconcile_files(lake_dir, source)
    assert (row.records_read, row.rows_stored, row.rows_quarantined, row.unaccounted) == (3, 2, 0, 1)


def ndjson(*resources) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources)


def test_ndjson_lines_are_routed_by_resource_type(registry, dirs):
    lake_dir, landing = dirs
    content = ndjson(
        {"resourceType": "Patient", "id": "a"},
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/a"}},
        "{not json",
        "",
        {"resourceType": "Basic", "id": "x"},
        [1, 2],
        {"id": "no-type"},
        {"resourceType": "Patient", "id": "b"},
    )
    land(landing, "fhir", "b1", {"mixed.ndjson": content, "log.ndjson": '{"eventId": "kickoff"}\n'})
    report = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1")
    by_path = {f.relative_path: f for f in report.files}

    assert by_path["fhir/b1/log.ndjson"].status == Status.IGNORED
    mixed = by_path["fhir/b1/mixed.ndjson"]
    assert mixed.rows_stored == {"patient": 2, "condition": 1, "other_resource": 1}
    assert (mixed.records_read, mixed.rows_quarantined) == (8, 4)
    patients = raw(lake_dir, "fhir", "patient").sort_by("_line_number").to_pydict()
    assert patients["resource_id"] == ["a", "b"] and patients["_line_number"] == [1, 8]
    assert json.loads(patients["resource_json"][0]) == {"resourceType": "Patient", "id": "a"}
    other = raw(lake_dir, "fhir", "other_resource").to_pydict()
    assert other["resource_type"] == ["Basic"]
    bad = quarantine(lake_dir).sort_by("_line_number").to_pydict()
    assert list(zip(bad["_line_number"], bad["reason_code"], strict=True)) == [
        (3, "MALFORMED_JSON"),
        (4, "EMPTY_LINE"),
        (6, "NOT_A_JSON_OBJECT"),
        (7, "MISSING_RESOURCE_TYPE"),
    ]
    assert [r.unaccounted for r in reconcile_files(lake_dir, registry.get("fhir"))] == [0]


def test_ndjson_non_ndjson_files_are_rejected(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "fhir", "b1", {"notes.txt": "hello\n"})
    result = only_file(ingest_batch(lake_dir, landing, registry.get("fhir"), "b1"))
    assert result.status == Status.FAILED and "matches no entity" in result.error


def test_ndjson_truncated_gzip_fails(registry, dirs):
    lake_dir, landing = dirs
    whole = gzip.compress(ndjson(*({"resourceType": "Patient", "id": str(i)} for i in range(3000))).encode())
    folder = land(landing, "fhir", "b1", {})
    (folder / "Patient.000.ndjson.gz").write_bytes(whole[:-20])
    result = only_file(ingest_batch(lake_dir, landing, registry.get("fhir"), "b1"))
    assert result.status == Status.FAILED and "truncated or corrupt gzip" in result.error
    assert raw(lake_dir, "fhir", "patient") is None


@given(
    st.sets(st.integers(min_value=2, max_value=60), max_size=20),
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=0, max_value=30),
)
def test_line_numbers_match_a_brute_force_count(skipped, first, count):
    good_lines = [line for line in range(2, 200) if line not in skipped]
    expected = good_lines[first : first + count]
    got = line_numbers(first, count, np.array(sorted(skipped), dtype=np.int64))
    assert got.tolist() == expected


@given(
    st.lists(st.sampled_from(["", "a,b", "\r", "x", "1,2,3"]), max_size=30),
    st.booleans(),
    st.integers(min_value=1, max_value=7),
)
def test_line_counting_matches_a_naive_split_whatever_the_chunk_size(lines, trailing_newline, chunk):
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    data = text.encode()
    counter = raw_ingest._LineCounter()
    for start in range(0, len(data), chunk):
        counter.feed(data[start : start + chunk])
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical = physical[:-1]
    expected_blank = tuple(i + 1 for i, line in enumerate(physical) if line in (b"", b"\r"))
    assert counter.finish() == (len(physical), expected_blank)
