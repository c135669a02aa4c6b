"""The manifest's declared schema holds every column written to it, so a rewrite keeps them: rows_erased
and landing_action, which an erasure sets (lib/governance/erase.py), survive a doctor repair."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib import doctor, lake, raw_ingest
from rwe_assets.lib.governance import erase
from rwe_assets.lib.raw_ingest import MANIFEST_SCHEMA, ingest_batch, read_manifest
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,,Bo\n"


def erased_lake(registry, dirs):
    """A lake whose one file lost a row to an erasure, marked in the manifest by erase's own writer."""
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    sha = read_manifest(lake_dir).column("file_sha256")[0].as_py()
    erasure = erase.Erasure("e1", person_id=1, records=1)
    with duckdb.connect() as con:
        erase._mark_manifest(con, lake_dir, {sha: (1, 0)}, erasure)
    return lake_dir


def test_the_declared_schema_has_the_erasure_columns():
    assert MANIFEST_SCHEMA.field("rows_erased").type == pa.int64()
    assert MANIFEST_SCHEMA.field("landing_action").type == pa.string()


def test_a_new_manifest_row_declares_the_erasure_columns_empty(registry, dirs):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    (row,) = read_manifest(lake_dir).to_pylist()
    assert (row["rows_erased"], row["landing_action"]) == (None, None)


def test_a_doctor_repair_keeps_what_an_erasure_wrote(registry, dirs):
    lake_dir = erased_lake(registry, dirs)
    (before,) = read_manifest(lake_dir).to_pylist()
    assert before["rows_erased"] == 1 and before["landing_action"].startswith("delete the landing copy")
    manifest = lake.table_path(lake_dir, "raw", raw_ingest.MANIFEST)
    lake.append(manifest, read_manifest(lake_dir))  # a manifest row twice: the doctor rewrites it

    report = doctor.examine(lake_dir, repair=True)

    assert [f.code for f in report.findings] == ["MANIFEST_ROW_TWICE"]
    (after,) = read_manifest(lake_dir).to_pylist()
    assert (after["rows_erased"], after["landing_action"]) == (1, before["landing_action"])
    assert after["records_read"] == before["records_read"] == 1


def test_ingest_after_an_erasure_appends_to_the_rewritten_manifest(registry, dirs):
    lake_dir = erased_lake(registry, dirs)
    land(dirs[1], "clinic", "b2", {"patients.csv": PATIENTS.replace("Ann", "Ada")})
    ingest_batch(lake_dir, dirs[1], registry.get("clinic"), "b2")
    rows = {r["batch_id"]: r for r in read_manifest(lake_dir).to_pylist()}
    assert (rows["b1"]["rows_erased"], rows["b2"]["rows_erased"]) == (1, None)
