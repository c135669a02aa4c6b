"""A first run as a new user makes it: the README's commands on a fresh copy of the repository, from a
plain shell, and a source of one's own added through a registry file in the data directory.

The README walk reuses this virtual environment (no package install in a test): the copy gets a
symlink to it, its pyproject.toml dated before the venv's install marker so `make` sees nothing to
install, PYTHONPATH pointing at the copy so the copy's code is what runs, and a PATH without the
venv's bin, as a shell where nothing was activated. It takes minutes (a demo build, the UI, a sensor
carrying a batch to a new published file): marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rwe_assets.definitions import build_definitions
from rwe_assets.lib import lake
from rwe_assets.lib.landing import list_batches
from rwe_assets.lib.sources import load_registry
from rwe_assets.settings import REPO_DIR

VENV = REPO_DIR / ".venv"
README_DEMO_PERSONS = 50  # `make demo DEMO_PERSONS=...`: the README's command with a smaller population
OWN_PATIENT = (
    "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,"
    "GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE\n"
    "own-1,1961-04-02,,999-11-2222,,,,Quill,Testperson,,,M,white,nonhispanic,M,,9 Elm Rd,Lowell,"
    "Massachusetts,,01850,0,0,0,0\n"
)


def _fresh_copy(target: Path) -> Path:
    """The repository as a clone would have it: tracked files plus new ones not ignored, nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(VENV)
    marker = (VENV / ".installed").stat().st_mtime
    os.utime(target / "pyproject.toml", (marker - 60, marker - 60))  # `make setup` has nothing to do
    return target


def _plain_env(copy: Path) -> dict[str, str]:
    venv_bin = os.path.realpath(VENV / "bin")  # however the venv is reached (symlinks, activation)
    entries = os.environ.get("PATH", "/usr/bin:/bin").split(":")
    path = ":".join(p for p in entries if p and os.path.realpath(p) != venv_bin)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RWE_", "DAGSTER_", "VIRTUAL_ENV"))}
    return {**env, "PATH": path, "PYTHONPATH": str(copy)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def _wait(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _drop_own_batch(site_a: Path) -> None:
    """A batch of one new patient with one encounter (a person with no event is not in the CDM: OHDSI
    THEMIS, no person without an observation period), the encounter borrowed from the demo's batch."""
    import csv

    with (site_a / "batch_0001" / "encounters.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        encounter = {**next(reader), "Id": "own-encounter-1", "PATIENT": "own-1"}
        columns = reader.fieldnames
    staging = site_a / ".own_0001"  # written beside, then renamed in: the sensor never sees half a batch
    staging.mkdir()
    (staging / "patients.csv").write_text(OWN_PATIENT)
    with (staging / "encounters.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerow(encounter)
    staging.rename(site_a / "own_0001")


def _own_person_published(lake_dir: Path, published: Path) -> bool:
    crosswalk = lake.open_table(lake.table_path(lake_dir, "linkage", "person_crosswalk"))
    if crosswalk is None:
        return False
    own = [
        row["person_id"]
        for row in crosswalk.to_pyarrow_dataset().to_table().to_pylist()
        if (row["source_system"], row["source_person_id"]) == ("ehr_site_a", "own-1")
    ]
    try:
        return len(own) == 1 and _has_person(published, own[0])
    except Exception:  # the published file is being swapped in: look again
        return False


def _has_person(published: Path, person_id: int) -> bool:
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        return (
            con.execute("SELECT count(*) FROM cdm.person WHERE person_id = ?", [person_id]).fetchone()[0] == 1
        )


def _persons(published: Path) -> int:
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute("SELECT count(*) FROM cdm.person").fetchone()[0]


@pytest.mark.slow
def test_the_readme_walked_on_a_fresh_copy_from_a_plain_shell(tmp_path):
    copy = _fresh_copy(tmp_path / "clone")
    env = _plain_env(copy)
    assert shutil.which("rwe", path=env["PATH"]) is None  # nothing of the venv on PATH
    readme = (copy / "README.md").read_text()
    for command in ("make demo", "make ui", "make init"):
        assert command in readme, f"the README no longer says {command!r}"

    demo = subprocess.run(
        ["make", "demo", f"DEMO_PERSONS={README_DEMO_PERSONS}"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    published = copy / "data" / "warehouse" / "rwe.duckdb"
    assert f"{published}" in demo.stdout and (copy / "data" / "dagster_home" / "dagster.yaml").exists()
    # the DuckDB command the demo prints works as printed
    printed = re.search(r"^\s+(/\S+/duckdb) -readonly (\S+)$", demo.stdout, re.MULTILINE)
    assert printed, demo.stdout[-2000:]
    shell = subprocess.run(
        [printed[1], "-readonly", printed[2], "-csv", "-noheader", "-c", "SELECT count(*) FROM cdm.person"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    persons = int(shell.stdout.strip())
    assert persons == _persons(published) > README_DEMO_PERSONS

    # one's own data: a key first (the README's `make init`), then a batch dropped while the UI runs
    subprocess.run(["make", "init"], cwd=copy, env=env, capture_output=True, check=True)
    assert (copy / "data" / "rwe.env").stat().st_mode & 0o777 == 0o600
    port = _free_port()
    ui = subprocess.Popen(
        ["make", "ui", f"UI_PORT={port}"],
        cwd=copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, stopped as one below
    )
    try:
        # Dropped as soon as the UI is started, not once it answers: the batch has settled (10 s) by
        # the daemon's first tick, which picks it up, where a batch dropped after the UI answers
        # waits for the landing sensor's next tick (30 s on).
        before = published.stat().st_mtime_ns
        _drop_own_batch(copy / "data" / "landing" / "ehr_site_a")
        answer = _wait(lambda: _graphql(port, "{ version }"), 180, "the UI to answer GraphQL", 1)
        assert answer["data"]["version"]
        groups = _graphql(port, "{ assetNodes { groupName } }")
        assert {"raw_ehr_site_a", "staging"} <= {node["groupName"] for node in groups["data"]["assetNodes"]}
        # the new patient gets a person id, and a newly published CDM has that person
        lake_dir = copy / "data" / "lake"
        _wait(
            lambda: _own_person_published(lake_dir, published), 900, "the own patient in a published CDM", 2
        )
        assert published.stat().st_mtime_ns != before
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)


def _land_generated(data: Path, persons: int) -> None:
    """Site A's generated patients, landed as site A and again as site C (the same persons). Only
    patients.csv: linkage reads who the patients are, and each of the 17 other entity files would
    cost a raw ingest and a staging pass twice over (about half the test's time) to no purpose."""
    from rwe_assets.synthetic import generate

    generate(data / "gen", persons=persons, seed=7)
    generated = data / "gen" / "landing" / "ehr_site_a" / "batch_0001" / "patients.csv"
    for site in ("ehr_site_a", "ehr_site_c"):
        (data / "landing" / site / "batch_0001").mkdir(parents=True)
        shutil.copyfile(generated, data / "landing" / site / "batch_0001" / "patients.csv")


def test_a_synthea_site_added_through_a_user_registry_is_its_own_group_and_links(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("RWE_DATA_DIR", str(data))
    monkeypatch.setenv("RWE_LINKAGE_KEY", "a-test-key-that-is-not-the-demo-key")
    monkeypatch.delenv("RWE_SOURCES_FILE", raising=False)
    data.mkdir()
    (data / "sources.yaml").write_text(
        yaml.safe_dump({"sources": [{"name": "ehr_site_c", "like": "ehr_site_a", "owner": "EHR site C"}]})
    )
    registry = load_registry()
    defs = build_definitions(registry)
    graph = defs.resolve_asset_graph()
    site_c = [key for key in graph.get_all_asset_keys() if key.path[:2] == ["raw", "ehr_site_c"]]
    assert site_c and {graph.get(key).group_name for key in site_c} == {"raw_ehr_site_c"}

    _land_generated(data, persons=40)
    with dg.instance_for_test() as instance:
        for source in (registry.get("ehr_site_a"), registry.get("ehr_site_c")):
            job = defs.resolve_job_def(f"raw_ingest_{source.name}")
            for batch in list_batches(data / "landing", source.name)[0]:
                instance.add_dynamic_partitions(f"batches_{source.name}", [batch.partition_key])
                assert job.execute_in_process(
                    instance=instance,
                    partition_key=batch.partition_key,
                    asset_selection=[dg.AssetKey(["raw", source.name, e]) for e in source.entity_names],
                ).success
        # staging and linkage: what decides who is who (the CDM only reads the crosswalk)
        linking = [key for key in graph.get_all_asset_keys() if key.path[0] in ("staging", "linkage")]
        build = defs.resolve_job_def("build")
        assert build.execute_in_process(instance=instance, asset_selection=linking).success

    crosswalk = lake.open_table(lake.table_path(data / "lake", "linkage", "person_crosswalk"))
    rows = crosswalk.to_pyarrow_dataset().to_table().to_pylist()
    person_of = {(r["source_system"], r["source_person_id"]): r["person_id"] for r in rows}
    site_c_ids = sorted(pid for (system, pid) in person_of if system == "ehr_site_c")
    assert site_c_ids and site_c_ids == sorted(pid for (system, pid) in person_of if system == "ehr_site_a")
    linked = [pid for pid in site_c_ids if person_of[("ehr_site_c", pid)] == person_of[("ehr_site_a", pid)]]
    assert linked == site_c_ids  # each of site C's patients is the same person as site A's copy of them
