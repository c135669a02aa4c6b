"""Scale on one machine (issue 25): the CDM build's own memory limit, amounts DuckDB would misread
refused, a CDM build connection that spills into warehouse/tmp instead of failing, a CSV with
rejected rows parsed and written once, its parse spilling into the lake's private scratch dir."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib import lake, raw_ingest
from rwe_assets.lib.cdm.build import _configure
from rwe_assets.lib.raw_ingest import csv_files, ingest_batch
from rwe_assets.settings import Settings
from rwe_assets_tests.conftest import land

MEMORY_VARIABLES = ("RWE_DUCKDB_MEMORY_LIMIT", "RWE_STAGING_MEMORY_LIMIT", "RWE_CDM_MEMORY_LIMIT")


def test_the_cdm_build_has_its_own_bounded_limit(tmp_path):
    default = Settings.from_env({"RWE_DATA_DIR": str(tmp_path)})
    assert (default.cdm_memory_limit, default.duckdb_memory_limit) == ("3GB", "8GB")
    env = {"RWE_DATA_DIR": str(tmp_path), "RWE_CDM_MEMORY_LIMIT": " 1.5GiB "}
    assert Settings.from_env(env).cdm_memory_limit == "1.5GiB"


@pytest.mark.parametrize("variable", MEMORY_VARIABLES)
@pytest.mark.parametrize("value", ["80%", "8", "-1GB", "0GB", "3 apples", "GB"])
def test_an_amount_duckdb_would_misread_is_refused(tmp_path, variable, value):
    # DuckDB reads "80%" as 80 bytes and "-1GB" as no limit at all
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({"RWE_DATA_DIR": str(tmp_path), variable: value})


@pytest.mark.parametrize("value", ["512MB", "3GB", "2G", "1.5 GiB", "4tb"])
def test_amounts_duckdb_reads_are_kept(tmp_path, value):
    settings = Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_CDM_MEMORY_LIMIT": value})
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{settings.cdm_memory_limit}'")


def test_the_cdm_connection_spills_into_the_warehouse_past_its_limit(tmp_path):
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    with duckdb.connect(str(warehouse / "build.duckdb")) as con:
        _configure(con, warehouse, "32MB", 1)
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
        # about 70 MB of rows: more than the limit holds, so DuckDB must write them to its temp dir
        con.execute("CREATE TEMP TABLE big AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) t(i)")
        spilled = con.execute("SELECT path FROM duckdb_temporary_files()").fetchall()
        assert spilled, "nothing spilled: the limit did not hold"
        assert all(path.startswith(str(warehouse / "tmp")) for (path,) in spilled)
        assert con.execute("SELECT count(*), max(i) FROM big").fetchone() == (1000000, 999999)


def test_a_csv_with_rejected_rows_is_parsed_and_written_once(registry, dirs, monkeypatch):
    # every 997th row is ragged: its line must be skipped by the numbering of the rows after it
    lake_dir, landing = dirs
    rows = [f"p{i},ragged" if i % 997 == 0 else f"p{i},2001-02-03,N{i}" for i in range(1, 150_001)]
    land(landing, "clinic", "b1", {"patients.csv": "Id,BIRTHDATE,FIRST\n" + "\n".join(rows) + "\n"})
    writes = []
    write = lake.replace_file_rows
    monkeypatch.setattr(lake, "replace_file_rows", lambda *a, **k: writes.append(a[0]) or write(*a, **k))

    (result,) = ingest_batch(lake_dir, landing, registry.get("clinic"), "b1").files
    assert [path.name for path in writes].count("patients") == 1, "the rows were written twice"
    assert (result.rows_stored, result.rows_quarantined) == ({"patients": 149_850}, 150)
    table = lake.read_table(lake.table_path(lake_dir, "raw", "clinic", "patients"))
    ids = pc.cast(pc.utf8_slice_codeunits(table["Id"], 1), pa.int64())
    assert pc.all(pc.equal(table["_line_number"], pc.add(ids, 1))).as_py()  # header is line 1


def test_a_csv_parse_spills_into_the_lakes_private_scratch_dir(tmp_path):
    # parsed raw rows hold PII: past the limit they go to <lake>/_work/ingest, never the system temp dir
    spill = tmp_path / "lake" / "_work" / "ingest"  # no part of it exists yet
    with csv_files._csv_connection(spill) as con:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        con.execute(f"SET memory_limit = '{raw_ingest.CSV_MEMORY_LIMIT}'")
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (limit,)
        con.execute("SET memory_limit = '32MB'")  # a small limit, to make it spill here
        con.execute("CREATE TEMP TABLE parsed AS SELECT i, md5(i::VARCHAR) AS s FROM range(1000000) t(i)")
        spilled = con.execute("SELECT path FROM duckdb_temporary_files()").fetchall()
    assert spilled and all(path.startswith(str(spill)) for (path,) in spilled)
