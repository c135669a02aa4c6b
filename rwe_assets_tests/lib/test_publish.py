from __future__ import annotations

import duckdb
import pytest

from rwe_assets.lib.publish import PublishBlocked, publish


def make_build(warehouse, persons, failed_checks=()):
    """A tiny build.duckdb with `persons` persons and one DQ run whose failed checks are given."""
    warehouse.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS cdm")
        con.execute("CREATE SCHEMA IF NOT EXISTS results")
        con.execute(
            "CREATE OR REPLACE TABLE cdm.person AS SELECT range AS person_id FROM range(?)", [persons]
        )
        con.execute(
            "CREATE OR REPLACE TABLE results.dq_check_results (run_id VARCHAR, run_at TIMESTAMP, check_id VARCHAR, "
            "check_name VARCHAR, num_violated_rows BIGINT, failed BOOLEAN, is_error BOOLEAN)"
        )
        con.execute(
            "INSERT INTO results.dq_check_results VALUES "
            "('r1', TIMESTAMP '2026-12-06 12:00', 'isRequired.person.person_id', 'isRequired', 0, false, false)"
        )
        for check_name in failed_checks:
            con.execute(
                "INSERT INTO results.dq_check_results VALUES ('r1', TIMESTAMP '2026-12-06 12:00', ?, ?, 3, true, false)",
                [f"{check_name}.person.person_id", check_name],
            )


def published_persons(warehouse):
    with duckdb.connect(str(warehouse / "rwe.duckdb"), read_only=True) as con:
        return con.execute("SELECT count(*) FROM cdm.person").fetchone()[0]


def test_publish_swaps_the_file_and_open_readers_keep_the_old_one(tmp_path):
    make_build(tmp_path, 3)
    target = publish(tmp_path)
    reader = duckdb.connect(str(target), read_only=True)
    make_build(tmp_path, 5)
    publish(tmp_path)
    assert reader.execute("SELECT count(*) FROM cdm.person").fetchone()[0] == 3  # old snapshot, no lock error
    reader.close()  # DuckDB shares one open database per path within a process: close before reopening
    assert published_persons(tmp_path) == 5


def test_a_broken_build_is_not_published(tmp_path):
    make_build(tmp_path, 3)
    publish(tmp_path)
    (tmp_path / "build.duckdb").write_bytes(b"not a database")
    with pytest.raises(duckdb.Error):
        publish(tmp_path)
    assert published_persons(tmp_path) == 3


@pytest.mark.parametrize("check", ["isPrimaryKey", "isForeignKey", "isRequired"])
def test_a_failed_structural_check_blocks_publishing(tmp_path, check):
    make_build(tmp_path, 3)
    publish(tmp_path)
    make_build(tmp_path, 5, failed_checks=[check])
    with pytest.raises(PublishBlocked, match=check):
        publish(tmp_path)
    assert published_persons(tmp_path) == 3  # the previous file is untouched


def test_plausibility_failures_are_reported_but_do_not_block(tmp_path):
    make_build(tmp_path, 4, failed_checks=["plausibleValueHigh"])
    publish(tmp_path)
    assert published_persons(tmp_path) == 4


def test_a_build_without_quality_results_is_not_published(tmp_path):
    make_build(tmp_path, 3)
    with duckdb.connect(str(tmp_path / "build.duckdb")) as con:
        con.execute("DROP TABLE results.dq_check_results")
    with pytest.raises(PublishBlocked, match="no data-quality results"):
        publish(tmp_path)
