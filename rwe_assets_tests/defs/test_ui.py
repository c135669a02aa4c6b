"""The Dagster UI, for real: the webserver started on a loopback port over the repo's workspace.yaml,
asked through its GraphQL API what a data engineer sees: the code location, the layers of the asset
graph, asset check results and freshness policies."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.definitions import defs
from rwe_assets.defs.jobs import run_landed_batches
from rwe_assets.lib.sources import load_registry
from rwe_assets.settings import REPO_DIR

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    internalFreshnessPolicy { __typename }
    freshnessStatusInfo { freshnessStatus }
    assetChecksOrError {
      ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status } } }
    }
  }
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the webserver exited"
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"webserver not serving after {seconds} s")


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body.get("errors")
    return body["data"]


def test_the_webserver_shows_the_graph_its_checks_and_freshness(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_DIR / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path / "data"))
    landing = tmp_path / "data" / "landing"
    # The sample's patients only: what the UI is asked about is raw/ehr_sample/patients' check, and
    # ingesting the 17 other files would only add seconds.
    (landing / "ehr_sample" / "synthea27").mkdir(parents=True)
    shutil.copyfile(
        SAMPLE_DIR / "synthea27" / "patients.csv", landing / "ehr_sample" / "synthea27" / "patients.csv"
    )
    with dg.DagsterInstance.get() as instance:  # the instance the webserver will read
        outcomes = run_landed_batches(defs, instance, landing, load_registry())
        assert [result.success for _, result in outcomes] == [True]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "dagster-webserver"), "-w", str(REPO_DIR / "workspace.yaml")]
    process = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_DIR,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(url, process)
        data = graphql(url, QUERY)
    finally:
        process.terminate()
        process.wait(timeout=30)

    locations = data["workspaceOrError"]["locationEntries"]
    assert [(entry["name"], entry["loadStatus"]) for entry in locations] == [("rwe_assets", "LOADED")]
    nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
    layers = {key.split("/")[0] for key in nodes}
    assert {"raw", "staging", "linkage", "cdm", "vocab", "results", "publish"} <= layers
    assert {node["groupName"] for node in nodes.values()} >= {"raw_ehr_sample", "staging", "cdm", "publish"}

    checks = {
        check["name"]: check for check in nodes["raw/ehr_sample/patients"]["assetChecksOrError"]["checks"]
    }
    reconcile = checks["raw_rows_reconcile"]
    assert reconcile["blocking"] and reconcile["executionForLatestMaterialization"]["status"] == "SUCCEEDED"
    staging_checks = nodes["staging/event"]["assetChecksOrError"]["checks"]
    assert [c["name"] for c in staging_checks] == ["staging_rows_reconcile"]  # declared, not yet run

    published = nodes["publish/rwe_duckdb"]
    assert published["internalFreshnessPolicy"]["__typename"] == "TimeWindowFreshnessPolicy"
    assert published["freshnessStatusInfo"]["freshnessStatus"] in {"UNKNOWN", "NOT_APPLICABLE", "DEGRADED"}
    assert nodes["staging/event"]["internalFreshnessPolicy"] is None
