"""A local S3 server for the tests that run the lake on object storage: moto's server mode, started
once per test process on a free port, in a child process (deltalake calls that hold the GIL while
they wait on the network, such as DeltaTable.is_deltatable, would deadlock a server thread of the
same process). Each test gets its own prefix in one bucket, so tests never see each other's tables.

make_s3_lake() sets the AWS_* variables that lib/lake.py hands to deltalake and pyarrow, and returns
the lake as a LakeUri."""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from rwe_assets.lib import lake

BUCKET = "rwe-test-lake"
_server: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def endpoint() -> str:
    """The server's URL, starting it (and its bucket) on first use."""
    if "url" in _server:
        return _server["url"]
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the moto S3 server did not start on port {port}") from None
            time.sleep(0.1)
    request = urllib.request.Request(f"{url}/{BUCKET}", method="PUT")  # moto takes unsigned requests
    urllib.request.urlopen(request, timeout=10).close()
    _server.update(url=url, process=process)
    return url


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


def environment(url: str) -> dict[str, str]:
    """The variables an operator sets for an S3-compatible endpoint (docs/operations.md)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
        "AWS_ALLOW_HTTP": "true",
    }


def new_lake_uri() -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex}/lake"


def make_s3_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> lake.LakeUri:
    """An empty lake on the local S3 server, the AWS_* variables set for the test; its local state
    (locks, rwe.env) in tmp_path/data."""
    for name, value in environment(endpoint()).items():
        monkeypatch.setenv(name, value)
    for name in set(lake.STORAGE_VARIABLES) - set(environment("")):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "data"
    state.mkdir(exist_ok=True)
    return lake.LakeUri(new_lake_uri(), state)
