"""NDJSON read in blocks through DuckDB gives, line for line, the rows and reason codes of the per-line
reading (ndjson_lines), on real FHIR bulk files and on every line DuckDB's parser would read another way."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from rwe_assets.lib import lake, raw_ingest
from rwe_assets.lib.raw_ingest import Status, ingest_batch, ndjson
from rwe_assets.lib.raw_ingest.ndjson_lines import _ndjson_lines
from rwe_assets.lib.sources import OTHER_RESOURCE
from rwe_assets_tests.conftest import land

REPO = Path(__file__).resolve().parents[2]
SAMPLES = [REPO / "data" / "sample" / "fhir13", Path("/work/shared/data/fhir_bulk_synthea13")]

# Lines the per-line reading and DuckDB's lenient JSON reader would not read alike without the guards.
EDGE_LINES = [
    b'{"resourceType": "Patient", "id": "p1"}',
    b'{"resourceType": "Patient", "id": "p2",}',  # trailing comma: DuckDB accepts, json refuses
    b'{"resourceType": "Patient", "id": "p3", "x": [1, 2 ]}',
    b'{"resourceType": "Patient", "x": nan}',  # yyjson's nan: refused by json
    b'{"resourceType": "Patient", "x": -inf}',
    b'{"resourceType": "Patient", "x": NaN, "y": -Infinity}',  # json's own: accepted by both
    b'{"resourceType": "Patient", "resourceType": "Condition"}',  # json keeps the last key
    b'{"resourceType": "Patient", "id": "first", "id": "last"}',
    b'{"resourceType": "Patient", "id": 42}',  # a number id: str() of it
    b'{"resourceType": "Patient", "id": null}',
    b'{"resourceType": "Condition", "id": "c1"}\r',  # CRLF
    b'{"resourceType": "Condition", "id": "c2"}\r\r',
    b"",  # blank
    b"   ",
    b'{"resourceType": "Patient", "name": "Jos\xe9"}',  # Latin-1, not UTF-8
    b'{"resourceType": "Patient", "name": "Jos\xc3\xa9"}',
    b'{"resourceType": "Bundle", "type": "collection", "entry": []}',  # a Bundle: land it as .json
    b'{"resourceType": "Bundle", "type": "document"}',  # not a Bundle type we take apart: a resource
    b'{"resourceType": ""}',
    b'{"resourceType": 7}',
    b'{"id": "no-type"}',
    b'["not", "an", "object"]',
    b'{"resourceType": "Patient"} trailing',
    b'{"resourceType": "Patient", "s": "tab\there"}',  # a raw control character in a string
    b'{"resourceType": "Patient", "s": "\\ud800"}',  # a lone surrogate escape: json accepts it
    b'{"resource\\u0054ype": "Observation", "id": "o1"}',
    b'{"resourceType": "Patient", "resource\\u0054ype": "Observation"}',  # an escaped repeated key
    b'{"resourceType": "Patient", "id": "a", "i\\u0064": "b"}',
    b'{"resourceType": "Patient", "id": "\\ud800"}',  # a lone surrogate as the id: no text holds it
    b'\xef\xbb\xbf{"resourceType": "Patient"}',  # a byte-order mark inside the file
    b'{"resourceType": "Patient", "text": "' + b"x" * 300 + b'"}',  # over the cap set below
    b'{"resourceType": "Patient", "text": "' + b"y" * 300 + b'"}\r',
    b'{"resourceType": "Observation", "id": "last"}',  # the last line, without a newline
]


def reference(path: Path, known: set[str]) -> tuple[dict, dict]:
    """Rows and quarantine by line number, as the per-line reading gives them."""
    rows, bad = {}, {}
    for line in _ndjson_lines(path, path.name, known):
        if line.reason:
            bad[line.number] = (line.reason, line.detail, line.text)
        else:
            rows[line.number] = (line.entity, line.resource_type, line.resource_id, line.text)
    return rows, bad


def stored(lake_dir: Path, source: str, entities) -> tuple[dict, dict]:
    rows = {}
    for entity in entities:
        table = lake.read_table(lake.table_path(lake_dir, "raw", source, entity))
        for r in table.to_pylist():
            rows[r["_line_number"]] = (entity, r["resource_type"], r["resource_id"], r["resource_json"])
    quarantine = lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE))
    bad = {
        r["_line_number"]: (r["reason_code"], r["detail"], r["raw_text"])
        for r in (quarantine.to_pylist() if quarantine is not None else [])
    }
    return rows, bad


def ingest_and_compare(registry, dirs, files: dict[str, bytes]) -> list:
    """Ingest one file (rows are told apart by line number only) and compare it with the reference."""
    assert len(files) == 1
    lake_dir, landing = dirs
    folder = land(landing, "fhir", "b1", files)
    report = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1")
    known = set(registry.get("fhir").entity_names)
    for result in report.files:
        assert result.status == Status.INGESTED, result.error
        assert result.reconciles
        path = folder / Path(result.relative_path).name
        expected_rows, expected_bad = reference(path, known)
        rows, bad = stored(lake_dir, "fhir", result.rows_stored)
        assert rows == expected_rows
        assert bad == expected_bad
        assert result.records_read == len(expected_rows) + len(expected_bad)
    return report.files


@pytest.mark.parametrize("folder", SAMPLES, ids=["bundled_sample", "shared_sample"])
def test_fhir_bulk_samples_read_alike(registry, tmp_path, folder):
    if not folder.exists():
        pytest.skip(f"{folder} is not on this machine")
    paths = sorted(p for p in folder.iterdir() if ".ndjson" in p.name and not p.name.startswith("log."))
    for path in paths:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        dirs = (tmp_path / path.name / "lake", tmp_path / path.name / "landing")
        ingest_and_compare(registry, dirs, {path.name: data})  # land() gzips a .gz name again


def test_one_file_of_many_resource_types_splits_alike(registry, dirs):
    folder = SAMPLES[0]
    data = b"".join(gzip.decompress(p.read_bytes()) for p in sorted(folder.glob("*.000.ndjson.gz")))
    (result,) = ingest_and_compare(registry, dirs, {"all.ndjson": data})
    assert set(result.rows_stored) == {"patient", "condition", OTHER_RESOURCE}


@pytest.mark.parametrize("block_bytes", [64, 1000, ndjson.BLOCK_BYTES])
def test_edge_lines_read_alike_at_any_block_size(registry, dirs, monkeypatch, block_bytes):
    monkeypatch.setattr(ndjson, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(raw_ingest, "MAX_LINE_BYTES", 256)
    (result,) = ingest_and_compare(registry, dirs, {"edge.ndjson": b"\n".join(EDGE_LINES)})
    assert result.records_read == len(EDGE_LINES)
    assert 0 < result.rows_quarantined < len(EDGE_LINES)


def test_the_lenient_guard_is_what_keeps_them_alike(registry, dirs, monkeypatch):
    """DuckDB accepts a trailing comma and nan; without the guard such a line would be stored."""
    con = duckdb.connect()
    assert con.execute("""SELECT json_valid('{"a": 1,}') AND json_valid('{"a": nan}')""").fetchone()[0]
    monkeypatch.setattr(ndjson, "_LENIENT", "$^")  # matches nothing
    lake_dir, landing = dirs
    land(landing, "fhir", "b1", {"p.ndjson": EDGE_LINES[0] + b"\n" + EDGE_LINES[1] + b"\n"})
    (result,) = ingest_batch(lake_dir, landing, registry.get("fhir"), "b1").files
    assert result.rows_stored == {"patient": 2}  # the trailing comma went through: the guard matters


def test_a_line_over_the_cap_between_blocks_is_measured_not_held(registry, dirs, monkeypatch):
    monkeypatch.setattr(ndjson, "BLOCK_BYTES", 16)
    monkeypatch.setattr(raw_ingest, "MAX_LINE_BYTES", 64)
    long = b'{"resourceType": "Patient", "text": "' + b"z" * 500 + b'"}'
    files = {"long.ndjson": EDGE_LINES[0] + b"\n" + long + b"\r\n" + EDGE_LINES[9] + b"\n" + long}
    (result,) = ingest_and_compare(registry, dirs, files)
    assert result.rows_quarantined == 2
