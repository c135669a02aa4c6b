"""The demo key links demo data only; a configured key must be long enough."""

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.linkage.keys import DEMO_KEY, resolve_key


def land(data_dir, relative, text):
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_configured_key_wins_and_must_be_long_enough(tmp_path):
    assert resolve_key("a-secret-of-sixteen+", tmp_path).demo is False
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        resolve_key("short", tmp_path)


def test_demo_key_on_generated_and_bundled_data_only(tmp_path):
    sample = tmp_path / "repo_sample"
    land(sample, "synthea27/patients.csv", "bundled")
    data = tmp_path / "data"
    land(data, "truth/report.json", "{}")
    land(
        data,
        "truth/expected_counts.csv",
        "SOURCE,BATCH,FILE\nehr_site_a,b1,landing/ehr_site_a/b1/patients.csv\n",
    )
    land(data, "landing/ehr_site_a/b1/patients.csv", "generated")
    land(data, "landing/ehr_sample/synthea27/patients.csv", "bundled")
    key = resolve_key(None, data, sample)
    assert key.demo and key.value == DEMO_KEY

    land(data, "landing/ehr_sample/synthea27/extra.csv", "a real extract")
    with pytest.raises(ConfigError, match="RWE_LINKAGE_KEY is not set"):
        resolve_key(None, data, sample)


def test_demo_key_refused_without_the_generator_report(tmp_path):
    data = tmp_path / "data"
    land(
        data,
        "truth/expected_counts.csv",
        "SOURCE,BATCH,FILE\nehr_site_a,b1,landing/ehr_site_a/b1/patients.csv\n",
    )
    land(data, "landing/ehr_site_a/b1/patients.csv", "who knows")
    with pytest.raises(ConfigError):
        resolve_key(None, data, tmp_path / "no_sample")
