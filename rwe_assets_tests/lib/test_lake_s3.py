"""The raw, staging and linkage tests, run a second time with the lake on a local S3 server (moto,
rwe_assets_tests/s3_lake.py): the same test functions, imported here, with the fixture that gives
them their lake overridden. Only the tests that exercise lake I/O (writes, idempotency, quarantine,
reconciliation, stable ids) are repeated, to keep the suite short. Plus what only object storage has:
lake.py's LakeUri and the DuckDB read through pyarrow's S3 filesystem."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib import doctor, lake, raw_ingest
from rwe_assets.lib.lake_lock import WRITER_TABLE, LakeLockedError, holds_lock, lake_lock
from rwe_assets.lib.raw_ingest import ingest_batch, reconcile_files
from rwe_assets.settings import Settings
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib import test_raw_ingest as raw_tests
from rwe_assets_tests.lib.linkage import test_crosswalk
from rwe_assets_tests.lib.staging import test_build
from rwe_assets_tests.s3_lake import make_s3_lake

# The repeated tests: pytest collects them again in this module, where the fixtures below put the lake
# on S3.
test_s3_values_are_kept_as_text = raw_tests.test_values_are_kept_as_text_with_provenance
test_s3_rerunning_adds_nothing = raw_tests.test_rerunning_a_batch_or_landing_the_same_file_again_adds_nothing
test_s3_a_changed_file_is_a_new_version = raw_tests.test_a_changed_file_is_a_new_version
test_s3_ragged_rows_are_quarantined = raw_tests.test_ragged_rows_are_quarantined_and_line_numbers_skip_them
test_s3_crash_before_manifest = raw_tests.test_a_crash_before_the_manifest_is_written_does_not_duplicate_rows
test_s3_failure_while_streaming = raw_tests.test_a_failure_while_streaming_commits_nothing
test_s3_ndjson_routed = raw_tests.test_ndjson_lines_are_routed_by_resource_type
test_s3_staged_rows_typed = test_build.test_rows_are_typed_and_pii_stays_in_person_pii
test_s3_staging_quarantine = test_build.test_invalid_rows_are_quarantined_with_reason_and_field
test_s3_staging_duplicates = test_build.test_duplicates_are_merged_or_quarantined
test_s3_staging_full_replace = test_build.test_staging_is_a_full_replace
test_s3_staging_accounting = test_build.test_a_written_table_that_disagrees_with_the_accounting_fails
test_s3_ids_are_stable = (
    test_crosswalk.test_ids_are_stable_new_batches_add_or_merge_and_history_records_merges
)
test_s3_merge_keeps_oldest_id = test_crosswalk.test_merge_is_recorded_and_keeps_the_oldest_id
test_s3_clerical_decision = test_crosswalk.test_clerical_decision_overrides_the_model
test_s3_crosswalk_contract = test_crosswalk.test_build_crosswalk_keeps_its_contract


@pytest.fixture
def s3_lake(tmp_path, monkeypatch):
    return make_s3_lake(tmp_path, monkeypatch)


@pytest.fixture
def dirs(s3_lake, tmp_path):  # the raw tests' lake, on S3
    return s3_lake, tmp_path / "data" / "landing"


@pytest.fixture
def tmp_path(tmp_path, monkeypatch, request):
    """The linkage tests take tmp_path as their lake: give them one on S3 (others keep the folder)."""
    if request.function.__module__ == test_crosswalk.__name__:
        return make_s3_lake(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture
def registry(registry, request):
    """The staging tests' own registry (their module's fixture), the shared one for the raw tests."""
    if request.function.__module__ == test_build.__name__:
        return test_build.synthea_registry()
    return registry


@pytest.fixture(autouse=True)
def _staging_on_s3(request, monkeypatch):
    """The staging tests build their lake in test_build.stage(): the same steps with the lake on S3."""
    if request.function.__module__ != test_build.__name__:
        return
    folder = request.getfixturevalue("tmp_path")
    lake_dir = make_s3_lake(folder, monkeypatch)

    def stage(tmp_path, registry, batches):
        landing = tmp_path / "landing"
        for batch, files in batches:
            land(landing, "site", batch, files)
            ingest_batch(lake_dir, landing, registry.get("site"), batch)
        return lake_dir, test_build.build_staging(lake_dir, registry)

    monkeypatch.setattr(test_build, "stage", stage)


def test_reconciliation_finds_a_row_lost_on_s3(registry, dirs):
    lake_dir, landing = dirs
    source = registry.get("clinic")
    land(landing, "clinic", "b1", {"patients.csv": "Id,BIRTHDATE,FIRST\np1,1990-01-01,A\np2,1991-01-01,B\n"})
    ingest_batch(lake_dir, landing, source, "b1")
    lake.open_table(lake.table_path(lake_dir, "raw", "clinic", "patients")).delete("_line_number = 3")
    (row,) = reconcile_files(lake_dir, source)
    assert row.unaccounted == 1


def test_the_setting_makes_an_s3_lake_and_a_local_one_by_default(tmp_path):
    local = Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})
    assert local.lake_dir == tmp_path / "lake"
    remote = Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_LAKE_URI": "s3://bucket/team/lake/"})
    assert remote.lake_dir == lake.LakeUri("s3://bucket/team/lake")
    assert lake.state_dir(remote.lake_dir / "raw" / "manifest") == tmp_path  # locks stay local
    with pytest.raises(ValueError, match="s3://bucket"):
        lake.LakeUri("s3://")
    with pytest.raises(ConfigError, match="a local lake is <RWE_DATA_DIR>/lake"):  # its key is there
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_LAKE_URI": str(tmp_path / "other")})


def test_lake_uri_paths_behave_like_the_local_ones():
    root = lake.LakeUri("s3://b/p/lake")
    table = lake.table_path(root, "raw", "src", "patients")
    assert str(table) == "s3://b/p/lake/raw/src/patients"
    assert (table.name, str(table.parent), table.key) == (
        "patients",
        "s3://b/p/lake/raw/src",
        "b/p/lake/raw/src/patients",
    )
    assert table.relative_to(root).as_posix() == "raw/src/patients"
    assert str(table.with_name("x")) == "s3://b/p/lake/raw/src/x"


def test_duckdb_reads_the_live_files_of_an_s3_table_through_pyarrow(s3_lake):
    path = s3_lake / "t"
    lake.write(path, pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}))
    lake.append(path, pa.table({"k": [4], "v": ["d"], "extra": [1.5]}))
    lake.open_table(path).delete("k = 2")  # the superseded file stays in the bucket
    con = duckdb.connect()
    assert lake.register_parquet_view(con, "by_files", path)
    assert lake.register_view(con, "by_delta", path)
    expected = [(1, "a", None), (3, "c", None), (4, "d", 1.5)]
    assert con.sql("SELECT * FROM by_files ORDER BY k").fetchall() == expected
    assert con.sql("SELECT * FROM by_delta ORDER BY k").fetchall() == expected
    assert [c[0] for c in con.execute("DESCRIBE by_files").fetchall()] == ["k", "v", "extra"]
    assert len(lake.tables_under(s3_lake)) == 1
    assert not lake.register_parquet_view(con, "missing", s3_lake / "missing")


def test_quarantine_and_manifest_land_on_s3_not_on_disk(registry, dirs, tmp_path):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": "Id,BIRTHDATE,FIRST\np1,1990-01-01,A\np2,1991-01-01\n"})
    ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    assert lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.QUARANTINE)).num_rows == 1
    assert lake.read_table(lake.table_path(lake_dir, "raw", raw_ingest.MANIFEST)).num_rows == 1
    assert not (tmp_path / "data" / "lake").exists() and not list(tmp_path.rglob("_delta_log"))


def test_one_data_directory_writes_a_lake_on_s3(s3_lake, tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_LAKE_URI", str(s3_lake))
    first, second = tmp_path / "first", tmp_path / "second"
    with lake_lock(first, "ingest"):
        pass
    with pytest.raises(LakeLockedError, match=f"written by data directory {first}"), lake_lock(second, "x"):
        pass
    with lake_lock(first, "build"):  # the claim stays with the first; its lock is free again
        assert holds_lock(first)
    assert not holds_lock(second)
    writers = lake.read_table(s3_lake / WRITER_TABLE).to_pylist()
    assert [w["data_dir"] for w in writers] == [str(first)]


def test_commands_that_rename_table_folders_refuse_an_s3_lake(s3_lake, tmp_path):
    with pytest.raises(ConfigError, match="doctor needs a local lake"):
        doctor.raw_tables(s3_lake)
    with pytest.raises(ConfigError, match="erase needs a local lake"):
        lake.require_local(s3_lake, "erase")
    assert lake.require_local(tmp_path / "lake", "erase") == tmp_path / "lake"
