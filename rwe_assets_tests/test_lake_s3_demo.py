"""The demo with its lake on S3-compatible storage (a local moto server) publishes the same CDM as the
demo with its lake on the local disk, by the CDM comparison tool (lib/cdm/compare/). Two demo builds
in subprocesses, minutes: marked slow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets.lib.lake_lock import WRITER_TABLE
from rwe_assets.settings import REPO_DIR
from rwe_assets_tests import s3_lake

PERSONS = 100  # the generated population beside the bundled samples: small, every source present


def _demo(data_dir, **extra) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RWE_", "AWS_", "DAGSTER_HOME"))}
    env.update(RWE_DATA_DIR=str(data_dir), **extra)
    done = subprocess.run(
        [sys.executable, "-m", "rwe_assets.cli", "demo", "--persons", str(PERSONS)],
        env=env,
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("RWE_S3_DEMO_TEST") != "1",
    reason="two demo builds (~4 min on 2 cores) would put the suite over its 15-minute budget: "
    "run with RWE_S3_DEMO_TEST=1 (docs/operations.md, 'The lake on object storage')",
)
def test_the_demo_on_s3_publishes_the_same_cdm_as_on_a_local_disk(tmp_path, monkeypatch):
    storage = s3_lake.environment(s3_lake.endpoint())
    uri = s3_lake.new_lake_uri()
    _demo(tmp_path / "local")
    _demo(tmp_path / "s3", RWE_LAKE_URI=uri, **storage)
    assert not (tmp_path / "s3" / "lake").exists()  # the lake went to the bucket, the CDM stays local
    for name, value in storage.items():
        monkeypatch.setenv(name, value)
    remote = [t for t in lake.tables_under(lake.LakeUri(uri)) if t.name != WRITER_TABLE]
    local = lake.tables_under(tmp_path / "local" / "lake")
    assert [t.relative_to(lake.LakeUri(uri)).as_posix() for t in remote] == [
        t.relative_to(tmp_path / "local" / "lake").as_posix() for t in local
    ]
    comparison = compare_cdms(
        tmp_path / "local" / "warehouse" / "rwe.duckdb", tmp_path / "s3" / "warehouse" / "rwe.duckdb"
    )
    assert comparison.same, format_comparison(comparison)
