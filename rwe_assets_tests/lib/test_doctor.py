"""`rwe doctor` repairs what a second writer or a crash left: a file listed and stored twice, manifest
rows whose rows are gone, rows no manifest row vouches for."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from rwe_assets.lib import doctor, lake, raw_ingest
from rwe_assets.lib.raw_ingest import ingest_batch, read_manifest, reconcile_files
from rwe_assets.settings import Settings
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,,Bo\nbad,row\n"
NDJSON = '{"resourceType": "Patient", "id": "1"}\n{"resourceType": "Condition", "id": "c"}\n'


def healthy_lake(registry, lake_dir, landing_dir):
    land(landing_dir, "clinic", "b1", {"patients.csv": PATIENTS})
    land(landing_dir, "fhir", "b1", {"Patient.ndjson": NDJSON})
    ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1")
    ingest_batch(lake_dir, landing_dir, registry.get("fhir"), "b1")


def snapshot(lake_dir) -> dict:
    state = {
        p.relative_to(lake_dir).as_posix(): lake.read_table(p).num_rows for p in doctor.raw_tables(lake_dir)
    }
    manifest = read_manifest(lake_dir).to_pylist()
    state["manifest"] = sorted((m["relative_path"], m["status"], m["rows_stored"]) for m in manifest)
    return state


def write_again(lake_dir, path, later) -> None:
    """What a second writer did: every row of the table appended again, stamped by its own ingest."""
    table = lake.read_table(path)
    stamp = pa.array([later] * table.num_rows, table.schema.field("_ingested_at").type)
    lake.append(path, table.set_column(table.schema.get_field_index("_ingested_at"), "_ingested_at", stamp))


def test_doctor_repairs_a_file_stored_and_listed_twice(registry, dirs):
    lake_dir, landing_dir = dirs
    healthy_lake(registry, lake_dir, landing_dir)
    expected = snapshot(lake_dir)
    assert doctor.examine(lake_dir).healthy

    manifest = read_manifest(lake_dir)
    later = manifest.column("ingested_at")[0].as_py() + timedelta(seconds=5)
    for path in doctor.raw_tables(lake_dir):
        write_again(lake_dir, path, later)
    again = manifest.set_column(
        manifest.schema.get_field_index("ingested_at"),
        "ingested_at",
        pa.array([later] * manifest.num_rows, manifest.schema.field("ingested_at").type),
    )
    lake.append(lake.table_path(lake_dir, "raw", raw_ingest.MANIFEST), again)
    assert snapshot(lake_dir) != expected
    assert any(r.unaccounted for r in reconcile_files(lake_dir, registry.get("clinic")))

    found = doctor.examine(lake_dir, repair=False)
    codes = sorted({f.code for f in found.findings})
    assert codes == ["MANIFEST_ROW_TWICE", "ROWS_STORED_TWICE"]
    assert "p1" not in " ".join(f.describe() for f in found.findings)  # no values in messages

    doctor.examine(lake_dir, repair=True)

    assert snapshot(lake_dir) == expected
    assert not any(
        r.unaccounted for s in ("clinic", "fhir") for r in reconcile_files(lake_dir, registry.get(s))
    )
    assert doctor.examine(lake_dir).healthy
    stamps = lake.read_table(lake.table_path(lake_dir, "raw", "clinic", "patients")).column("_ingested_at")
    assert pc.count_distinct(stamps).as_py() == 1  # the ingest the manifest lists is the one kept


def test_doctor_drops_manifest_rows_without_rows_and_rows_without_manifest_rows(registry, dirs):
    lake_dir, landing_dir = dirs
    healthy_lake(registry, lake_dir, landing_dir)
    patients = lake.table_path(lake_dir, "raw", "clinic", "patients")
    lake.replace_file_rows(
        patients,
        lake.read_table(patients).schema.empty_table(),
        read_manifest(lake_dir, "clinic")["file_sha256"][0].as_py(),
    )
    quarantine = lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE)
    lake.replace_file_rows(
        quarantine,
        lake.read_table(quarantine).schema.empty_table(),
        read_manifest(lake_dir, "clinic")["file_sha256"][0].as_py(),
    )
    land(landing_dir, "clinic", "b2", {"patients.csv": PATIENTS.replace("p1", "p9")})
    real = raw_ingest._append_manifest
    raw_ingest._append_manifest = lambda *a, **k: None  # a crash between the rows and the manifest
    try:
        ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b2")
    finally:
        raw_ingest._append_manifest = real

    report = doctor.examine(lake_dir, repair=True)

    assert sorted(f.code for f in report.findings) == ["ORPHAN_ROWS", "ORPHAN_ROWS", "ROWS_MISSING"]
    assert [m["relative_path"] for m in read_manifest(lake_dir, "clinic").to_pylist()] == []
    assert lake.read_table(patients).num_rows == 0
    assert doctor.examine(lake_dir).healthy
    ingest_batch(lake_dir, landing_dir, registry.get("clinic"), "b1")  # the next ingest reads it again
    assert lake.read_table(patients).num_rows == 2


def test_doctor_main_prints_and_exits_zero_after_repair(registry, dirs, monkeypatch, capsys, tmp_path):
    lake_dir, landing_dir = dirs
    healthy_lake(registry, lake_dir, landing_dir)
    path = lake.table_path(lake_dir, "raw", "clinic", "patients")
    write_again(lake_dir, path, read_manifest(lake_dir)["ingested_at"][0].as_py() + timedelta(seconds=1))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setattr("rwe_assets.lib.sources.load_registry", lambda: registry)
    settings = Settings.from_env({"RWE_DATA_DIR": str(lake_dir.parent)})
    assert doctor.main(settings) == 0
    out = capsys.readouterr().out
    assert "repaired ROWS_STORED_TWICE: lake/raw/clinic/patients" not in out  # paths are lake-relative
    assert "repaired ROWS_STORED_TWICE: raw/clinic/patients" in out
    assert doctor.main(settings) == 0 and "consistent" in capsys.readouterr().out
