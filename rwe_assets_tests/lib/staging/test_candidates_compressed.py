"""A source's candidate rows are stored compressed: DuckDB's in-memory database compresses a table only
at a checkpoint and never makes one itself, so uncompressed candidates spilled 29 GB at 1M persons
(bench/README.md, pipeline.py). Staging checkpoints after each profile SQL file's insert that added rows."""

from __future__ import annotations

from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.staging import accounting, build
from rwe_assets.lib.staging.build import staging_connection
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.staging.test_build import (
    CONDITIONS_HEADER,
    ENCOUNTERS_HEADER,
    PATIENTS_HEADER,
    encounter,
    patient,
    synthea_registry,
)

ROWS = 3_000  # conditions: enough rows for DuckDB to pick a compression per segment


def test_candidate_rows_are_compressed_once_inserted(tmp_path):
    registry = synthea_registry("site")
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    conditions = "".join(f"2020-01-{1 + i % 28:02d},,p1,e1,44054006,Diabetes\n" for i in range(ROWS))
    land(
        landing,
        "site",
        "b1",
        {
            "patients.csv": PATIENTS_HEADER + patient("p1"),
            "encounters.csv": ENCOUNTERS_HEADER + encounter("e1", "p1"),
            "conditions.csv": CONDITIONS_HEADER + conditions,
        },
    )
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    current = [r for r in build.current_manifest_rows(lake_dir) if r["source"] == "site"]
    con = staging_connection("256MB", 1)
    accounting.create_totals(con)
    build._create_candidate_tables(con)
    build._stage_source(con, lake_dir, registry.get("site"), current)

    assert con.execute("SELECT count(*) FROM cand_event").fetchone()[0] == ROWS
    codecs = dict(
        con.execute(
            "SELECT column_name, list(DISTINCT compression) FROM pragma_storage_info('cand_event') "
            "WHERE segment_type <> 'VALIDITY' GROUP BY ALL"
        ).fetchall()
    )
    assert codecs["code"] != ["Uncompressed"], codecs  # one value 3,000 times
    assert codecs["source_system"] != ["Uncompressed"], codecs
