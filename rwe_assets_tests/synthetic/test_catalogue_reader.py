"""The catalogue reader refuses a key listed twice and a reference to a missing key, naming the
table and the key; the shipped catalogue resolves every reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rwe_assets.errors import ConfigError
from rwe_assets.synthetic.catalogue import CATALOGUE_DIR
from rwe_assets.synthetic.catalogue_reader import load_catalogue


def edited_catalogue(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((CATALOGUE_DIR / "clinical.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "clinical.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_shipped_catalogue_resolves_its_references():
    cat = load_catalogue()
    hypertension = cat.condition("hypertension")
    assert [cat.drugs[d].key for d in hypertension.drugs] == ["lisinopril_10", "hctz_25", "amlodipine_2_5"]
    assert [cat.labs[i].key for i in cat.panel("vitals").labs][:3] == ["body_height", "body_weight", "bmi"]
    assert all(v.index == i for i, v in enumerate(cat.variants))


def test_a_key_listed_twice_is_refused(tmp_path):
    path = edited_catalogue(tmp_path, lambda raw: raw["drugs"].append(dict(raw["drugs"][0])))
    with pytest.raises(ConfigError, match="drugs lists 'lisinopril_10' twice"):
        load_catalogue(path)


def test_a_reference_to_a_missing_key_is_refused(tmp_path):
    def drop_drug(raw):
        raw["drugs"] = [d for d in raw["drugs"] if d["key"] != "hctz_25"]

    with pytest.raises(ConfigError, match="drugs has no entry 'hctz_25'"):
        load_catalogue(edited_catalogue(tmp_path, drop_drug))


def test_a_panel_named_by_a_condition_must_exist(tmp_path):
    named = next(p for c in load_catalogue().conditions for p in c.panels)

    def rename_panel(raw):
        raw["panels"][named + "_renamed"] = raw["panels"].pop(named)

    with pytest.raises(ConfigError, match=f"panels has no entry '{named}'"):
        load_catalogue(edited_catalogue(tmp_path, rename_panel))
