"""The CSV raw ingest on a full disk: the spilled temp table under <lake>/_work/ingest or the Delta write
fails with ENOSPC. That is the machine's fault, not the file's: the error must reach the caller naming
the file (which of a batch's files was being written), the file must not be recorded as failed (a rerun
reads it again), and the scratch folder must not be left behind."""

from __future__ import annotations

import errno

import duckdb
import pytest

from rwe_assets.errors import InputFileError
from rwe_assets.lib import lake
from rwe_assets.lib.raw_ingest import Status, csv_files, ingest_batch, read_manifest
from rwe_assets_tests.conftest import land

PATIENTS = "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\np2,1999-12-31,Cy\n"
FILE = "clinic/b1/patients.csv"


class _FullDiskConnection:
    """A DuckDB connection whose spill fails while the parsed temp table is written."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args):
        if "CREATE TEMP TABLE parsed" in sql:
            raise duckdb.IOException(
                'IO Error: Could not write file "duckdb_temp_storage_DEFAULT-0.tmp": No space left on device'
            )
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def _spill_full(monkeypatch):
    real = csv_files._csv_connection
    monkeypatch.setattr(csv_files, "_csv_connection", lambda spill: _FullDiskConnection(real(spill)))


def _delta_full(monkeypatch):
    def write(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lake, "replace_file_rows", write)


@pytest.mark.parametrize("fault", [_spill_full, _delta_full], ids=["spill", "delta_write"])
def test_a_full_disk_is_raised_naming_the_file_and_the_file_is_read_again(registry, dirs, monkeypatch, fault):
    lake_dir, landing = dirs
    land(landing, "clinic", "b1", {"patients.csv": PATIENTS})
    with monkeypatch.context() as patch:
        fault(patch)
        with pytest.raises(Exception) as raised:
            ingest_batch(lake_dir, landing, registry.get("clinic"), "b1")
    error = raised.value
    assert not isinstance(error, InputFileError)  # not the file's fault: it would be recorded `failed`
    assert FILE in str(error), f"the error does not name the file: {error!r}"
    assert "No space left on device" in str(error) or getattr(error, "errno", None) == errno.ENOSPC
    assert read_manifest(lake_dir, "clinic").num_rows == 0  # nothing recorded: a rerun reads it
    assert not lake.work_dir(lake_dir, "ingest").exists()  # the scratch folder went with the spill

    (result,) = ingest_batch(lake_dir, landing, registry.get("clinic"), "b1").files
    assert (result.status, result.total_stored) == (Status.INGESTED, 2)
