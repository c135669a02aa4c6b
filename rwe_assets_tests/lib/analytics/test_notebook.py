"""examples/first_hour.py (a percent-format notebook) runs end to end on a small published CDM."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

from rwe_assets.settings import REPO_DIR
from rwe_assets_tests.lib.analytics.test_survival import build_study

NOTEBOOK = REPO_DIR / "examples" / "first_hour.py"


def test_notebook_cells_are_percent_format():
    text = NOTEBOOK.read_text(encoding="utf-8")
    code_cells = [c for c in text.split("\n# %%") if not c.startswith(" [markdown]")]
    assert len(code_cells) >= 6  # header + setup, characterization, cohort, incidence, KM, close
    assert "read_only=True" in text


def test_notebook_runs_end_to_end_on_the_published_file(tmp_path):
    build_study(tmp_path / "data")
    published = tmp_path / "rwe.duckdb"
    shutil.copy(tmp_path / "data" / "warehouse" / "build.duckdb", published)
    before = hashlib.sha256(published.read_bytes()).hexdigest()
    env = {**os.environ, "RWE_DB": str(published), "RWE_NOTEBOOK_OUT": str(tmp_path), "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, str(NOTEBOOK)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "opened read-only" in run.stdout
    assert "[P][R] Type 2 diabetes mellitus - 15 persons" in run.stdout
    assert "brca_breast_cancer: log-rank p = " in run.stdout
    assert "smoking_copd: log-rank p = " in run.stdout
    for name in ("brca_breast_cancer", "smoking_copd"):
        assert (tmp_path / f"km_first_hour_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert hashlib.sha256(published.read_bytes()).hexdigest() == before  # read-only: unchanged
