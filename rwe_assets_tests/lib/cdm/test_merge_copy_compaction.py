"""build.duckdb after incremental builds in a row: the copy of the last build a merge starts from is
written anew once publishing would compact it (lib/cdm/incremental.copy_last_build), so the build file
stays within the bound of a compact copy instead of keeping the space of every merge's deleted rows."""

from __future__ import annotations

import os

import duckdb

from rwe_assets.lib.cdm.incremental import copy_last_build
from rwe_assets.lib.publish import COMPACT_SHARE, compact_database, publish_file
from rwe_assets_tests.lib.test_publish_compaction import PERSONS, events, make_build

LIMITS = ("1GB", 1)


def merge_into_copy(warehouse, build: int, share: float = 0.1) -> tuple[str, int]:
    """What lib/cdm/build._merge_into_last_build does: copy the last build, replace a share of the
    persons' rows in the copy, mark it incremental, and rename it over build.duckdb. Returns why it
    copied so and the size of the copy the merge started from."""
    final, work = warehouse / "build.duckdb", warehouse / "build.duckdb.work"
    copied = copy_last_build(final, work, LIMITS)
    started = work.stat().st_size
    persons = int(PERSONS * share)
    first = (build * persons) % PERSONS
    with duckdb.connect(str(work)) as con:
        con.execute(
            f"DELETE FROM cdm.condition_occurrence WHERE person_id BETWEEN {first} AND {first + persons - 1}"
        )
        con.execute(f"INSERT INTO cdm.condition_occurrence {events(first, persons, build)}")
        con.execute("CREATE OR REPLACE TABLE results.incremental_build AS SELECT 'token' AS token")
        con.execute("CHECKPOINT")
    os.replace(work, final)
    return copied, started


def facts(path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*), sum(hash(c)) FROM cdm.condition_occurrence c").fetchone()


def test_each_merge_starts_from_a_copy_within_the_bound_of_a_compact_one(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    publish_file(warehouse)  # the full build published: the bytes per row measured against
    reasons, bound = [], None
    for build in range(1, 7):
        last = facts(warehouse / "build.duckdb")
        reason, started = merge_into_copy(warehouse, build)
        reasons.append(reason)
        assert bound is None or started <= bound, (build, reasons)  # the copy, before this merge
        publish_file(warehouse)
        compact = tmp_path / f"compact_{build}.duckdb"
        compact_database(warehouse / "build.duckdb", compact)
        bound = compact.stat().st_size / (1 - COMPACT_SHARE)
        assert facts(warehouse / "build.duckdb") == facts(compact) != last
    assert any(r.startswith("copied") for r in reasons)  # a byte copy while little is reclaimable
    assert any(r.startswith("compacted") for r in reasons)  # else the bound was never tested


def test_a_compact_last_build_is_copied_byte_for_byte(tmp_path):
    warehouse = tmp_path / "warehouse"
    make_build(warehouse)
    publish_file(warehouse)
    reason = copy_last_build(warehouse / "build.duckdb", tmp_path / "copy.duckdb", LIMITS)
    assert reason.startswith("copied")
    assert (tmp_path / "copy.duckdb").read_bytes() == (warehouse / "build.duckdb").read_bytes()
