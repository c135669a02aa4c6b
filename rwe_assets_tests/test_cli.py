"""The `rwe` command: the linkage key before ingest, exact counts, tools spawned from this interpreter,
the Dagster home in the data directory, unknown landing folders named, failures that say why."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from rwe_assets import cli
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.linkage.keys import DEMO_KEY
from rwe_assets.lib.linkage_key import check_before_ingest, key_problem, lake_non_demo_files
from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import load_registry
from rwe_assets.settings import Settings

OWN_PATIENTS = (
    "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,"
    "GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE\n"
    "p1,1970-01-01,,999-00-0000,,,,Ann,Example,,,,white,nonhispanic,F,,1 Main St,Town,MA,,01000,0,0,0,0\n"
)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty data directory as the only configuration: no key, no Dagster home set."""
    data = tmp_path / "data"
    monkeypatch.setenv("RWE_DATA_DIR", str(data))
    for name in ("RWE_LINKAGE_KEY", "RWE_TOMBSTONE_KEY", "DAGSTER_HOME", "RWE_SOURCES_FILE"):
        monkeypatch.delenv(name, raising=False)
    return data


def _land_own_batch(data: Path, batch: str = "own_2026") -> Path:
    folder = data / "landing" / "ehr_site_a" / batch
    folder.mkdir(parents=True)
    (folder / "patients.csv").write_text(OWN_PATIENTS)
    return folder


def _land_sample(data: Path) -> None:
    shutil.copytree(cli.SAMPLE_DIR / "synthea27", data / "landing" / "ehr_sample" / "synthea27")


def test_without_a_key_a_batch_of_ones_own_data_is_refused_before_ingest(data_dir, capsys):
    _land_own_batch(data_dir)
    (data_dir / "landing" / "ehr_stie_b").mkdir()  # a mistyped source folder: said, not ignored
    assert cli.main(["ingest"]) == cli.REFUSED
    err = capsys.readouterr().err
    assert "RWE_LINKAGE_KEY is not set" in err and "ehr_site_a/own_2026 is not demo data" in err
    assert "rwe init" in err and str(data_dir / "rwe.env") in err  # the fix, with the file it writes
    assert "landing/ehr_stie_b is not a source in the registry" in err
    assert not (data_dir / "lake").exists()  # refused before anything was ingested
    assert (data_dir / "dagster_home" / "dagster.yaml").exists()  # DAGSTER_HOME defaults inside the data dir


def test_rwe_init_writes_an_owner_only_key_that_lifts_the_refusal(data_dir, capsys):
    _land_own_batch(data_dir)
    assert cli.main(["init"]) == 0
    env_file = data_dir / "rwe.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    key = Settings.from_env().linkage_key
    assert key and len(key) == 64 and key != DEMO_KEY
    tombstones = Settings.from_env().tombstone_key  # a key of its own, which a rotation never changes
    assert tombstones and len(tombstones) == 64 and tombstones != key
    out = capsys.readouterr().out
    assert key not in out and tombstones not in out  # never printed
    assert cli.main(["init"]) == 0 and Settings.from_env().linkage_key == key  # kept, never replaced
    settings = Settings.from_env()
    assert check_before_ingest(settings, list_batches(settings.landing_dir, "ehr_site_a")[0]) is None


def test_demo_data_needs_no_key(data_dir):
    _land_sample(data_dir)
    settings = Settings.from_env()
    assert check_before_ingest(settings, list_batches(settings.landing_dir, "ehr_sample")[0]) is None


def _lake_with_own_records(data: Path) -> Settings:
    """Own records ingested earlier (with a key since removed), their files gone from the landing zone."""
    folder = _land_own_batch(data)
    settings = Settings.from_env()
    ingest_batch(settings.lake_dir, settings.landing_dir, load_registry().get("ehr_site_a"), folder.name)
    shutil.rmtree(folder)
    _land_sample(data)  # what waits now is demo data only
    return settings


@pytest.mark.parametrize("configured", [None, DEMO_KEY])
def test_the_demo_key_is_refused_while_the_lake_holds_records_that_are_not_demo_data(
    data_dir, monkeypatch, capsys, configured
):
    settings = _lake_with_own_records(data_dir)
    assert lake_non_demo_files(settings) == ["ehr_site_a/own_2026/patients.csv"]
    if configured:
        monkeypatch.setenv("RWE_LINKAGE_KEY", configured)
    assert cli.main(["ingest"]) == cli.REFUSED
    err = capsys.readouterr().err
    assert "the lake holds records that are not demo data" in err and "rwe init" in err


def test_key_problem_decides_on_the_key_first(tmp_path):
    settings = Settings.from_env(
        {"RWE_DATA_DIR": str(tmp_path), "RWE_LINKAGE_KEY": "a-real-secret-of-32-bytes-000000"}
    )
    assert key_problem(settings, [], lake_has_non_demo=True) is None
    short = Settings.from_env({"RWE_DATA_DIR": str(tmp_path), "RWE_LINKAGE_KEY": "short"})
    assert "shorter than 16 bytes" in key_problem(short, [], lake_has_non_demo=False)


def test_the_summary_counts_rows_exactly(tmp_path):
    path = tmp_path / "rwe.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA cdm; CREATE SCHEMA results")
        con.execute("CREATE TABLE cdm.person AS SELECT range AS person_id FROM range(3000)")
        con.execute("CREATE TABLE cdm.death (person_id BIGINT)")
        con.execute("DELETE FROM cdm.person WHERE person_id >= 2000")
        con.execute(
            "CREATE TABLE results.reconciliation (cdm_table VARCHAR, staged_table VARCHAR, staged_rows BIGINT)"
        )
        con.execute(
            "INSERT INTO results.reconciliation VALUES ('not_modelled', 'raw.ehr_site_b.careteam', 7)"
        )
        estimated = con.execute(
            "SELECT estimated_size FROM duckdb_tables() WHERE table_name = 'person'"
        ).fetchone()[0]
    assert estimated == 3000  # what the summary printed before: deleted rows counted
    counts, kept = cli.published_counts(path)
    assert counts == [("person", 2000)]  # exact, and empty tables left out
    assert kept == [("raw.ehr_site_b.careteam", 7)]


def test_the_ui_is_started_from_this_interpreter_not_from_path(monkeypatch):
    started = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: started.append(command) or 0)
    assert cli._ui(3999) == 0
    assert started[0][:4] == [sys.executable, "-m", "dagster", "dev"] and started[0][-1] == "3999"
    assert cli.duckdb_cli().parent == Path(sys.executable).parent


def test_a_failed_run_reports_the_steps_own_message():
    @dg.op
    def reads_a_file():
        raise ValueError("landing/x/batch/patients.csv line 3: expected 25 columns, found 2")

    @dg.op
    def says_why():
        raise dg.Failure(
            description="2 file(s) could not be read", metadata={"errors": "- a.csv: bad\n- b.csv: bad"}
        )

    @dg.job
    def failing():
        reads_a_file()
        says_why()

    errors = dict(cli.run_errors(failing.execute_in_process(raise_on_error=False)))
    assert (
        errors["reads_a_file"]
        == "ValueError: landing/x/batch/patients.csv line 3: expected 25 columns, found 2"
    )
    assert (
        errors["says_why"].startswith("2 file(s) could not be read\n")
        and "- b.csv: bad" in errors["says_why"]
    )


def test_clean_keeps_the_batches_one_landed_and_reset_removes_them(data_dir, capsys):
    own = _land_own_batch(data_dir)
    _land_sample(data_dir)
    generated = data_dir / "landing" / "payer" / "batch_0001"
    generated.mkdir(parents=True)
    (data_dir / "truth").mkdir()
    (data_dir / "truth" / "expected_counts.csv").write_text("SOURCE,BATCH,FILE\npayer,batch_0001,x\n")
    for built in ("lake", "warehouse", "dagster_home"):
        (data_dir / built).mkdir()
    assert cli.main(["init"]) == 0
    assert cli.main(["clean"]) == 0
    assert own.exists() and (data_dir / "rwe.env").exists()
    assert not generated.exists() and not (data_dir / "landing" / "ehr_sample" / "synthea27").exists()
    assert not any((data_dir / name).exists() for name in ("lake", "warehouse", "dagster_home", "truth"))
    assert "kept your landed batches (1): ehr_site_a/own_2026" in capsys.readouterr().out
    assert cli.main(["clean", "--all"]) == 0
    assert not (data_dir / "landing").exists() and (data_dir / "rwe.env").exists()
