"""NDJSON's lines are counted by its reader, not by a line scan before it (issue 25): the manifest's
lines_read is the physical line count the scan gave, and what only the scan found (an empty file, a
truncated gzip) fails as it failed before."""

from __future__ import annotations

import gzip

import pytest

from rwe_assets.lib.raw_ingest import Status, batch, ingest_batch, ndjson, read_manifest
from rwe_assets.lib.raw_ingest.scan import scan_file
from rwe_assets_tests.conftest import land

PATIENT = '{"resourceType": "Patient", "id": "%s"}'
# blank lines (LF, CR LF), a malformed line, CR LF endings and no newline at the end
CONTENT = (PATIENT % "p1") + "\n\n" + (PATIENT % "p2") + "\r\n\r\n{not json\n" + (PATIENT % "p3")


def no_scan(*args):
    raise AssertionError("a line scan of an NDJSON file")


@pytest.mark.parametrize("name", ["Patient.000.ndjson", "Patient.000.ndjson.gz"])
def test_the_reader_counts_the_lines_the_scan_counted(registry, dirs, monkeypatch, name):
    lake_dir, landing = dirs
    folder = land(landing, "fhir", "b1", {name: CONTENT})
    expected = scan_file(folder / name, name).lines
    monkeypatch.setattr(batch, "scan_file", no_scan)
    monkeypatch.setattr(ndjson, "scan_file", no_scan)
    result = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1").files[0]
    assert (result.status, result.total_stored, result.rows_quarantined) == (Status.INGESTED, 3, 3)
    assert result.lines_read == result.records_read == expected == 6
    assert read_manifest(lake_dir).to_pylist()[0]["lines_read"] == 6


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\r\n\n"])
def test_an_empty_ndjson_file_fails_and_writes_nothing(registry, dirs, content):
    lake_dir, landing = dirs
    land(landing, "fhir", "b1", {"Patient.000.ndjson": content})
    result = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1").files[0]
    assert result.status == Status.FAILED and "empty file" in result.error
    assert result.error.startswith("fhir/b1/Patient.000.ndjson line 1")
    assert not (lake_dir / "raw" / "fhir").exists()


def test_a_gzip_cut_after_some_lines_names_the_line_as_the_scan_did(registry, dirs):
    lake_dir, landing = dirs
    whole = gzip.compress("".join((PATIENT % i) + "\n" for i in range(300_000)).encode())
    folder = land(landing, "fhir", "b1", {})
    (folder / "Patient.000.ndjson.gz").write_bytes(whole[: len(whole) * 3 // 4])
    with pytest.raises(Exception) as scanned:
        scan_file(folder / "Patient.000.ndjson.gz", "fhir/b1/Patient.000.ndjson.gz")
    result = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1").files[0]
    assert result.status == Status.FAILED and result.error == str(scanned.value)
    assert "after line " in result.error
    assert not (lake_dir / "raw" / "fhir" / "patient").exists()


def test_a_duplicate_file_is_not_read_but_its_lines_are_counted(registry, dirs):
    lake_dir, landing = dirs
    for batch_id in ("b1", "b2"):  # the same bytes again: DUPLICATE, with the lines of the file
        land(landing, "fhir", batch_id, {"Patient.000.ndjson": CONTENT})
        result = ingest_batch(lake_dir, landing, registry.get("fhir"), batch_id).files[0]
    assert (result.status, result.lines_read, result.total_stored) == (Status.DUPLICATE, 6, 0)
