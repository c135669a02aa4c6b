"""Crash safety: the pipeline SIGKILLed at several points and run again publishes the same tables as
an uninterrupted run, and the published file stays readable, and unchanged, throughout."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import duckdb

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.crash_harness import POINTS


def run_pipeline(data_dir, point=None) -> int:
    command = [
        sys.executable,
        "-m",
        "rwe_assets_tests.crash_harness",
        str(data_dir),
        *([point] if point else []),
    ]
    return subprocess.run(command, cwd=REPO_DIR, capture_output=True, timeout=600).returncode


def land(data_dir, source, batch):
    shutil.copytree(SAMPLE_DIR / batch, data_dir / "landing" / source / batch)


def fingerprint(path) -> dict[str, tuple[int, int]]:
    """(rows, order-independent content hash) of every CDM table of a published database."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'cdm' ORDER BY table_name"
            ).fetchall()
        ]
        return {
            t: con.execute(f"SELECT count(*), coalesce(sum(hash(x)), 0) FROM cdm.{t} AS x").fetchone()
            for t in tables
            if t != "cdm_source"  # its release date is the day of the build
        }


def test_killed_runs_recover_to_the_same_published_tables(tmp_path):
    uninterrupted, crashed = tmp_path / "uninterrupted", tmp_path / "crashed"
    for data_dir in (uninterrupted, crashed):  # the same history: one batch published, then a second
        land(data_dir, "ehr_sample", "synthea27")
        assert run_pipeline(data_dir) == 0
    published = crashed / "warehouse" / "rwe.duckdb"
    first_version = fingerprint(published)

    for data_dir in (uninterrupted, crashed):
        land(data_dir, "ehr_sample_fhir", "fhir13")
    assert run_pipeline(uninterrupted) == 0
    for point in POINTS:
        assert run_pipeline(crashed, point) == -signal.SIGKILL, point
        assert fingerprint(published) == first_version, point  # readable, and still the old version
    assert run_pipeline(crashed) == 0

    expected = fingerprint(uninterrupted / "warehouse" / "rwe.duckdb")
    assert expected["note"][0] == 1215  # the second batch is in
    assert fingerprint(published) == expected
