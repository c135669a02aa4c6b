"""Retention: superseded files and log entries older than the retention go, current data stays."""

import json
import os
import time

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from rwe_assets.lib.governance import audit, retention
from rwe_assets.settings import Settings

DAY = 86400


def age_removals(table_path, version: int, days: float) -> None:
    """Make the files that commit `version` removed look removed `days` ago (its log says when)."""
    commit = table_path / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] = int((time.time() - days * DAY) * 1000)
    commit.write_text("".join(json.dumps(a) + "\n" for a in actions))


def age(table_path, days: float) -> None:
    """Make every file of the table (data and log) look written `days` ago."""
    then = time.time() - days * DAY
    for entry in [*table_path.glob("*.parquet"), *(table_path / "_delta_log").iterdir()]:
        os.utime(entry, (then, then))


@pytest.fixture
def lake(tmp_path):
    """raw/t: v0 {1, 2} and v1 {3} written 40 days ago (v1 superseding v0 then, a checkpoint at v1);
    v2 {4} now. Returns (lake_dir, table path, the file of v0, the file of v1)."""
    lake_dir = tmp_path / "data" / "lake"
    path = lake_dir / "raw" / "t"
    write_deltalake(str(path), pa.table({"a": [1, 2]}))
    v0_files = live_files(path)
    write_deltalake(str(path), pa.table({"a": [3]}), mode="overwrite")
    v1_files = live_files(path)
    age_removals(path, 1, 40)
    DeltaTable(str(path)).create_checkpoint()
    age(path, 40)
    write_deltalake(str(path), pa.table({"a": [4]}), mode="overwrite")
    return lake_dir, path, v0_files, v1_files


def parquet_files(path) -> set[str]:
    return {p.name for p in path.glob("*.parquet")}


def live_files(path, version: int | None = None) -> set[str]:
    return {uri.rsplit("/", 1)[-1] for uri in DeltaTable(str(path), version=version).file_uris()}


def test_files_superseded_before_the_retention_go_and_younger_ones_stay(lake):
    lake_dir, path, v0_files, v1_files = lake
    current = live_files(path)
    assert parquet_files(path) == v0_files | v1_files | current

    report = retention.apply_retention(lake_dir, 30)

    assert parquet_files(path) == v1_files | current  # v0's file, superseded 40 days ago, is gone
    assert DeltaTable(str(path)).to_pyarrow_table().to_pydict() == {"a": [4]}
    assert DeltaTable(str(path), version=1).to_pyarrow_table().to_pydict() == {"a": [3]}  # within 30 days
    assert not (path / "_delta_log" / f"{0:020d}.json").exists()  # log before the old checkpoint
    assert report.files_removed == 1
    assert report.audit_what()["tables_changed"] == ["raw/t"]


def test_a_shorter_retention_removes_more_and_a_second_run_nothing(lake):
    lake_dir, path, _, _ = lake
    assert retention.apply_retention(lake_dir, 0).files_removed == 2
    assert parquet_files(path) == live_files(path)
    assert DeltaTable(str(path)).to_pyarrow_table().to_pydict() == {"a": [4]}
    again = retention.apply_retention(lake_dir, 0)
    assert (again.files_removed, again.log_files_removed) == (0, 0)


def test_the_tables_carry_the_retention_and_the_audit_chain_survives_it(lake):
    lake_dir, path, _, _ = lake
    settings = Settings.from_env(environ={}, data_dir=lake_dir.parent)
    audit.record(settings, "build", {"rows": 1})
    report = retention.apply_retention(lake_dir, 7)
    assert [t.table for t in report.tables] == ["audit/trail", "raw/t"]
    configuration = DeltaTable(str(path)).metadata().configuration
    assert configuration["delta.logRetentionDuration"] == "interval 7 days"
    assert configuration["delta.deletedFileRetentionDuration"] == "interval 7 days"
    audit.record(settings, "retention", report.audit_what())
    assert audit.verify_chain(settings) == []
    with pytest.raises(ValueError):
        retention.apply_retention(lake_dir, -1)


def test_the_log_is_cleaned_by_the_setting_not_by_deltas_default(tmp_path):
    lake_dir = tmp_path / "lake"
    path = lake_dir / "staging" / "t"
    write_deltalake(str(path), pa.table({"a": [1]}))
    write_deltalake(str(path), pa.table({"a": [2]}), mode="overwrite")
    age_removals(path, 1, 10)
    DeltaTable(str(path)).create_checkpoint()
    age(path, 10)  # younger than Delta's default 30 days: its own clean-up keeps it
    write_deltalake(str(path), pa.table({"a": [3]}), mode="overwrite")
    first_commit = path / "_delta_log" / f"{0:020d}.json"
    assert first_commit.exists()

    report = retention.apply_retention(lake_dir, 7)

    assert not first_commit.exists() and report.log_files_removed >= 1
    assert report.files_removed == 1  # v0's file, superseded 10 days ago
    assert DeltaTable(str(path)).to_pyarrow_table().to_pydict() == {"a": [3]}


def test_a_table_nobody_wrote_since_its_log_expired_is_cleaned_too(tmp_path):
    lake_dir = tmp_path / "lake"
    path = lake_dir / "linkage" / "t"
    write_deltalake(str(path), pa.table({"a": [1]}))
    DeltaTable(str(path)).alter.set_table_properties(
        {
            "delta.logRetentionDuration": "interval 7 days",
            "delta.deletedFileRetentionDuration": "interval 7 days",
        }
    )
    DeltaTable(str(path)).create_checkpoint()
    age(path, 10)  # no commit since: no commit hook will clean it up
    first_commit = path / "_delta_log" / f"{0:020d}.json"
    assert first_commit.exists()
    assert retention.apply_retention(lake_dir, 7).log_files_removed == 1
    assert not first_commit.exists()
    assert DeltaTable(str(path)).to_pyarrow_table().to_pydict() == {"a": [1]}
