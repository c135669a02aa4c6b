"""The published file after incremental builds: merges into a copy of the last build leave the space of
deleted rows in the file, and publishing compacts it once it passes COMPACT_SHARE, keeping every fact
and object, and a crash mid-compaction leaves the last published file as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import duckdb
import pytest

from rwe_assets.errors import RweError
from rwe_assets.lib import publish as publish_module
from rwe_assets.lib.cdm.compare import compare_cdms
from rwe_assets.lib.publish import COMPACT_RECORD, COMPACT_SHARE, INCOMING, compact_database, publish_file
from rwe_assets.settings import REPO_DIR

PERSONS = 2_000
EVENTS_PER_PERSON = 40


def make_build(warehouse):
    """A small CDM with what a build holds besides tables: a view, a macro, an index, comments, and a
    passed data-quality run."""
    warehouse.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute("CREATE SCHEMA cdm; CREATE SCHEMA results; CREATE SCHEMA analytics")
        con.execute(
            "CREATE TABLE cdm.person AS SELECT range AS person_id, 8507 AS gender_concept_id, "
            "1950 + range % 50 AS year_of_birth, 0 AS race_concept_id, 0 AS ethnicity_concept_id "
            f"FROM range({PERSONS})"
        )
        con.execute(f"CREATE TABLE cdm.condition_occurrence AS {events(0, PERSONS, 0)}")
        con.execute("CREATE INDEX condition_person ON cdm.condition_occurrence (person_id)")
        con.execute("COMMENT ON TABLE cdm.person IS 'one row per linked person'")
        con.execute("COMMENT ON COLUMN cdm.person.year_of_birth IS 'from the crosswalk'")
        con.execute(
            "CREATE VIEW analytics.condition_counts AS "
            "SELECT condition_concept_id, count(*) AS n FROM cdm.condition_occurrence GROUP BY ALL"
        )
        con.execute("CREATE MACRO analytics.suppress(n) AS CASE WHEN n < 5 THEN NULL ELSE n END")
        con.execute(
            "CREATE TABLE results.dq_check_results AS SELECT 'r1' AS run_id, TIMESTAMP '2026-12-06 12:00' "
            "AS run_at, 'isRequired.person.person_id' AS check_id, 'isRequired' AS check_name, "
            "0::BIGINT AS num_violated_rows, false AS failed, false AS is_error"
        )


def events(first_person: int, persons: int, build: int) -> str:
    """EVENTS_PER_PERSON condition rows per person from first_person on; `build` varies the values as
    a rebuilt person's rows would."""
    return (
        "SELECT (p * 1000 + e) AS condition_occurrence_id, p AS person_id, "
        f"(320128 + (p + e + {build}) % 97)::INTEGER AS condition_concept_id, "
        f"DATE '2010-01-01' + INTERVAL ((p * 7 + e * 13 + {build}) % 4000) DAY AS condition_start_date, "
        "32020 AS condition_type_concept_id, 'ICD10 ' || (p + e) AS condition_source_value "
        f"FROM range({first_person}, {first_person + persons}) AS a(p), range({EVENTS_PER_PERSON}) AS b(e)"
    )


def incremental_merge(warehouse, build: int, share: float = 0.1) -> None:
    """What lib/cdm/incremental.py's merge does to the copy of the last build: the rows of a share of
    the persons deleted and inserted again as rebuilt."""
    persons = int(PERSONS * share)
    first = (build * persons) % PERSONS
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute(
            f"DELETE FROM cdm.condition_occurrence WHERE person_id BETWEEN {first} AND {first + persons - 1}"
        )
        con.execute(f"INSERT INTO cdm.condition_occurrence {events(first, persons, build)}")
        con.execute("CREATE OR REPLACE TABLE results.incremental_build AS SELECT 'token' AS token")
        con.execute("CHECKPOINT")


def compact_size(warehouse, tmp_path) -> int:
    fresh = tmp_path / "fresh.duckdb"
    fresh.unlink(missing_ok=True)
    compact_database(warehouse / "build.duckdb", fresh)
    return fresh.stat().st_size


def test_incremental_builds_in_a_row_keep_the_published_file_within_the_bound(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    runs = [publish_file(warehouse)]
    for build in range(1, 5):
        incremental_merge(warehouse, build)
        runs.append(publish_file(warehouse))
        bound = compact_size(warehouse, tmp_path) / (1 - COMPACT_SHARE)
        assert runs[-1].size_bytes <= bound, (build, runs[-1])
    assert not runs[0].compacted and "not over 25%" in runs[0].reason
    assert any(run.compacted for run in runs)  # else the bound above was never tested
    # a byte copy would have grown past it: the build file itself is not compacted
    assert (warehouse / "build.duckdb").stat().st_size > compact_size(warehouse, tmp_path) / (
        1 - COMPACT_SHARE
    )


def test_the_compacted_file_holds_the_same_facts_and_every_object(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    for build in range(1, 6):
        incremental_merge(warehouse, build, share=0.2)
    published = publish_file(warehouse)
    assert published.compacted and published.size_bytes < published.build_bytes
    assert compare_cdms(warehouse / "build.duckdb", published.path).same
    with duckdb.connect(str(published.path), read_only=True) as con:
        assert con.execute("SELECT sum(n) FROM analytics.condition_counts").fetchone() == (
            PERSONS * EVENTS_PER_PERSON,
        )
        assert con.execute("SELECT analytics.suppress(3), analytics.suppress(7)").fetchone() == (None, 7)
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'person'").fetchone() == (
            "one row per linked person",
        )
        assert con.execute(
            "SELECT comment FROM duckdb_columns() WHERE column_name = 'year_of_birth'"
        ).fetchone() == ("from the crosswalk",)
        assert con.execute("SELECT index_name FROM duckdb_indexes()").fetchall() == [("condition_person",)]
    assert not (warehouse / INCOMING).exists()


def test_a_compaction_that_loses_an_object_is_refused(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    real = publish_module._differences

    def without_macro(con, left, right):
        con.execute(f"DROP MACRO {right}.analytics.suppress")
        return real(con, left, right)

    monkeypatch.setattr(publish_module, "_differences", without_macro)
    with pytest.raises(RweError, match=r"macro analytics\.suppress"):
        compact_database(warehouse / "build.duckdb", tmp_path / "compacted.duckdb")
    assert not (tmp_path / "compacted.duckdb").exists()


# Run in a child process: SIGKILL once the build's rows are copied into the new file, before the copy
# is checkpointed (the new file half written, its log beside it), as a crash would.
KILLED_MID_COMPACTION = """
import os, signal, sys
from pathlib import Path
import duckdb
from rwe_assets.lib import publish

real_connect = duckdb.connect

class Dying:
    def __init__(self, con):
        self.con = con
    def execute(self, sql, *args):
        if sql.startswith("CHECKPOINT compacted"):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.con.execute(sql, *args)
    def __getattr__(self, name):
        return getattr(self.con, name)

publish.duckdb.connect = lambda *a, **k: Dying(real_connect(*a, **k)) if not a else real_connect(*a, **k)
publish.publish(Path(sys.argv[1]))
"""


def test_a_crash_mid_compaction_leaves_the_last_published_file(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    first = publish_file(warehouse)
    with duckdb.connect(str(first.path), read_only=True) as con:
        before = con.execute("SELECT count(*), sum(hash(c)) FROM cdm.condition_occurrence c").fetchone()
    for build in range(1, 6):
        incremental_merge(warehouse, build, share=0.2)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_COMPACTION, str(warehouse)],
        cwd=REPO_DIR,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert (warehouse / INCOMING).exists()  # it died mid-compaction, its file left behind
    with duckdb.connect(str(first.path), read_only=True) as con:
        assert (
            con.execute("SELECT count(*), sum(hash(c)) FROM cdm.condition_occurrence c").fetchone() == before
        )
    again = publish_file(warehouse)  # the leftover file and its log are discarded, not replayed
    assert again.compacted
    assert compare_cdms(warehouse / "build.duckdb", again.path).same
    assert not (warehouse / INCOMING).exists()


def test_an_incremental_build_with_nothing_to_measure_against_is_compacted(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    assert not publish_file(warehouse).compacted  # a full build: fresh, copied, its size recorded
    (warehouse / COMPACT_RECORD).unlink()
    incremental_merge(warehouse, 1, share=0.01)
    published = publish_file(warehouse)
    assert published.compacted and "no compact file published" in published.reason
    # what the next publish measures against: the file just compacted
    assert json.loads((warehouse / COMPACT_RECORD).read_text())["bytes"] == published.size_bytes
