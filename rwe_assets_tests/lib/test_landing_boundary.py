"""The landing zone as a boundary: links, traversal keys and invalid folders are refused with a reason;
every text line is capped; a rerun over an unchanged bad file adds no manifest row."""

from __future__ import annotations

import gzip
import random

import dagster as dg
import pytest

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake, landing, raw_ingest
from rwe_assets.lib.raw_ingest import Status, ingest_batch, read_manifest
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\n"


def quarantine_reasons(lake_dir) -> list[str]:
    table = lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE))
    return [] if table is None else table.column("reason_code").to_pylist()


def test_a_symlinked_file_is_refused_with_its_reason_and_never_read(registry, dirs, tmp_path):
    lake_dir, landing_dir = dirs
    outside = tmp_path / "secret.ndjson"
    outside.write_text('{"resourceType": "Patient", "id": "x"}\n' * 25)
    folder = land(landing_dir, "fhir", "b1", {"Patient.ndjson": '{"resourceType": "Patient", "id": "1"}\n'})
    (folder / "x.ndjson").symlink_to(outside)

    report = ingest_batch(lake_dir, landing_dir, registry.get("fhir"), "b1")

    refused = [f for f in report.files if f.status == Status.REFUSED]
    assert [f.relative_path for f in refused] == ["fhir/b1/x.ndjson"]
    assert "SYMLINK_REFUSED" in refused[0].error and report.failed == refused
    rows = lake.read_table(lake.table_path(lake_dir, "raw", "fhir", "patient"))
    assert rows.num_rows == 1  # the link's 25 lines were never read, not even into quarantine
    assert quarantine_reasons(lake_dir) == []
    manifest = read_manifest(lake_dir).to_pylist()
    assert [(m["relative_path"], m["status"]) for m in manifest if m["status"] == "refused"] == [
        ("fhir/b1/x.ndjson", "refused")
    ]
    ingest_batch(lake_dir, landing_dir, registry.get("fhir"), "b1")  # a rerun: same outcome, no new row
    assert read_manifest(lake_dir).num_rows == len(manifest)


def test_a_symlinked_folder_inside_a_batch_is_refused(registry, dirs, tmp_path):
    lake_dir, landing_dir = dirs
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "patients.csv").write_text(PATIENTS)
    folder = land(landing_dir, "clinic", "b1", {"patients.csv": PATIENTS})
    (folder / "more").symlink_to(tmp_path / "elsewhere")
    report = ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1")
    assert {(f.relative_path, f.status) for f in report.files} == {
        ("clinic/b1/patients.csv", Status.INGESTED),
        ("clinic/b1/more", Status.REFUSED),
    }


def test_traversal_and_linked_batches_are_refused_and_listed(registry, dirs, tmp_path):
    lake_dir, landing_dir = dirs
    land(landing_dir, "clinic", "good", {"patients.csv": PATIENTS})
    land(landing_dir, "clinic", "bad name", {"patients.csv": PATIENTS})
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "patients.csv").write_text(PATIENTS)
    (landing_dir / "clinic" / "linked").symlink_to(tmp_path / "x")

    with pytest.raises(InputFileError, match=landing.INVALID_NAME):
        ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "../../../../x")
    with pytest.raises(InputFileError, match=landing.SYMLINK):
        ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "linked")
    assert not lake.exists(lake.table_path(lake_dir, "raw", "clinic", "patients"))

    batches, rejected = landing.list_batches(landing_dir, "clinic")
    assert [b.batch_id for b in batches] == ["good"] and rejected == ["bad name", "linked"]
    invalid = landing.invalid_batches(landing_dir, registry)
    assert [(i.name, i.reason_code) for i in invalid] == [
        ("bad name", landing.INVALID_NAME),
        ("linked", landing.SYMLINK),
    ]
    assert all(i.describe().startswith("landing/clinic/") for i in invalid)


def test_the_raw_asset_refuses_a_traversal_partition_key(registry, tmp_path, monkeypatch):
    """A key typed into the launchpad never passed the sensor: the asset itself refuses it."""
    from rwe_assets.defs.partitions import batches_for
    from rwe_assets.defs.raw.assets import _source_assets
    from rwe_assets.resources import RweConfig

    data_dir = tmp_path / "data"
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "patients.csv").write_text(PATIENTS)
    (data_dir / "landing" / "clinic").mkdir(parents=True)
    monkeypatch.setenv("RWE_DATA_DIR", str(data_dir))
    key = "clinic__../../../x"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(batches_for("clinic").name, [key])
        result = dg.materialize(
            [_source_assets(registry.get("clinic"))],
            partition_key=key,
            instance=instance,
            resources={"rwe": RweConfig()},
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "partition refused" in failure and landing.INVALID_NAME in failure
    assert not (data_dir / "lake" / "raw" / "clinic").exists()


def test_a_long_csv_line_is_quarantined_as_line_too_long(registry, dirs, monkeypatch):
    lake_dir, landing_dir = dirs
    monkeypatch.setattr(raw_ingest, "MAX_LINE_BYTES", 4096)
    text = PATIENTS + "p2,2001-02-03," + "A" * 5000 + "\np3,1999-12-31,Cy\n"
    land(landing_dir, "clinic", "b1", {"patients.csv": text})
    result = ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1").files[0]
    assert (result.status, result.rows_stored, result.rows_quarantined) == (
        Status.INGESTED,
        {"patients": 2},
        1,
    )
    assert quarantine_reasons(lake_dir) == ["LINE_TOO_LONG"]


@pytest.mark.parametrize("compressed", [False, True])
def test_a_long_ndjson_line_is_quarantined_without_being_kept(registry, dirs, monkeypatch, compressed):
    lake_dir, landing_dir = dirs
    monkeypatch.setattr(raw_ingest, "MAX_LINE_BYTES", 1024)
    long_line = '{"resourceType": "Patient", "id": "2", "x": "' + "A" * 200_000 + '"}'
    lines = ['{"resourceType": "Patient", "id": "1"}', long_line, '{"resourceType": "Patient", "id": "3"}']
    name = "Patient.ndjson.gz" if compressed else "Patient.ndjson"
    land(landing_dir, "fhir", "b1", {name: "\n".join(lines) + "\n"})
    result = ingest_batch(lake_dir, landing_dir, registry.get("fhir"), "b1").files[0]
    assert (result.rows_stored, result.rows_quarantined, result.records_read) == ({"patient": 2}, 1, 3)
    table = lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE)).to_pylist()
    assert [(q["reason_code"], q["_line_number"], q["raw_text"]) for q in table] == [
        ("LINE_TOO_LONG", 2, None)
    ]
    assert str(len(long_line)) in table[0]["detail"]


def test_bounded_lines_match_plain_lines_under_the_cap():
    import io

    data = b"a\n" + b"b" * 10 + b"\n\nccc"
    assert list(raw_ingest._bounded_lines(io.BytesIO(data), cap=10)) == [
        b"a\n",
        b"b" * 10 + b"\n",
        b"\n",
        b"ccc",
    ]
    assert list(raw_ingest._bounded_lines(io.BytesIO(data), cap=5)) == [b"a\n", 10, b"\n", b"ccc"]


def test_a_file_failing_before_hashing_adds_one_manifest_row_however_often_rerun(registry, dirs):
    lake_dir, landing_dir = dirs
    land(landing_dir, "clinic", "b1", {"patients.csv": "", "notes.txt": "x"})
    for _ in range(3):
        ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1")
    manifest = read_manifest(lake_dir).to_pylist()
    assert sorted((m["relative_path"], m["status"]) for m in manifest) == [
        ("clinic/b1/notes.txt", "failed"),
        ("clinic/b1/patients.csv", "failed"),
    ]
    assert all(m["file_sha256"] for m in manifest)  # the outcome is tied to the bytes
    land(landing_dir, "clinic", "b1", {"patients.csv": PATIENTS})  # the fix: a new outcome, one row
    ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1")
    assert read_manifest(lake_dir).num_rows == 3


def test_a_gzip_truncated_in_its_first_line_says_so(registry, dirs):
    lake_dir, landing_dir = dirs
    noise = random.Random(1).randbytes(50_000).hex()  # does not compress: the cut falls inside line 1
    data = gzip.compress(("Id,BIRTHDATE,FIRST," + noise).encode())[:200]
    folder = land(landing_dir, "clinic", "b1", {})
    (folder / "patients.csv.gz").write_bytes(data)
    result = ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1").files[0]
    assert result.status == Status.FAILED
    assert "before the end of its first line" in result.error and "after line 0" not in result.error
