from __future__ import annotations

import copy

import pytest

from rwe_assets.errors import ConfigError
from rwe_assets.lib.landing import is_valid_batch_id, parse_partition_key, partition_key
from rwe_assets.lib.sources import OTHER_RESOURCE, load_registry, parse_registry
from rwe_assets_tests.conftest import TINY_REGISTRY


def test_the_project_registry_declares_the_four_source_kinds():
    registry = load_registry()
    kinds = {source.name: (source.kind, source.format) for source in registry}
    assert kinds == {
        "ehr_sample": ("ehr", "csv"),
        "ehr_sample_fhir": ("ehr", "ndjson"),
        "ehr_site_a": ("ehr", "csv"),
        "ehr_site_b": ("ehr", "ndjson"),
        "payer": ("claims", "csv"),
        "lab": ("genomics", "csv"),
    }
    payer = registry.get("payer")
    assert (
        payer.entity_for_file("DE1_0_2008_Beneficiary_Summary_File_Sample_0.csv").name
        == "beneficiary_summary"
    )
    assert payer.entity_for_file("DE1_0_2008_to_2010_Carrier_Claims_Sample_0A.csv").name == "carrier_claims"
    assert registry.get("ehr_site_a").entity_for_file("patients.csv.gz").name == "patients"
    assert OTHER_RESOURCE in registry.get("ehr_site_b").entity_names


def test_adding_a_source_is_a_registry_entry(registry):
    document = copy.deepcopy(TINY_REGISTRY)
    document["sources"].append(
        {
            "name": "registry_b",
            "kind": "ehr",
            "format": "csv",
            "extract": "snapshot",
            "owner": "tumour registry",
            "entities": [{"name": "tumours", "required_columns": ["ID"]}],
        }
    )
    extended = parse_registry(document)
    assert extended.get("registry_b").entity_for_file("TUMOURS.CSV").name == "tumours"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sources"].append(dict(d["sources"][0])), "unique"),
        (lambda d: d["sources"][0].update(kind="lab"), "expected kind"),
        (lambda d: d["sources"][0].update(format="xml"), "expected format"),
        (lambda d: d["sources"][0].update(extract="full"), "expected extract one of snapshot, incremental"),
        (lambda d: d["sources"][0].pop("extract"), "expected a non-empty 'extract'"),
        (lambda d: d["sources"][0].update(name="Bad Name"), "lower-case"),
        (lambda d: d["sources"][0].update(entities=[]), "at least one entity"),
        (lambda d: d.update(sources=[]), "non-empty list"),
        (lambda d: d["sources"][0].update(deduplicated="yes"), "expected deduplicated true or false"),
    ],
)
def test_invalid_registries_are_refused(change, message):
    document = copy.deepcopy(TINY_REGISTRY)
    change(document)
    with pytest.raises(ConfigError, match=message):
        parse_registry(document)


def test_partition_keys_round_trip_and_batch_names_are_checked():
    assert parse_partition_key(partition_key("payer", "2024-06_a")) == ("payer", "2024-06_a")
    assert is_valid_batch_id("2024-06-01.extract")
    assert not is_valid_batch_id("a__b") and not is_valid_batch_id("a b") and not is_valid_batch_id(".hidden")
    with pytest.raises(ValueError, match="expected a partition key"):
        parse_partition_key("nobatch")


def _user_registry(path, sources: list[dict]):
    import yaml

    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


def test_a_user_registry_file_adds_a_source_like_a_bundled_one(tmp_path):
    user = _user_registry(
        tmp_path / "sources.yaml", [{"name": "ehr_site_c", "like": "ehr_site_a", "owner": "EHR site C"}]
    )
    registry = load_registry(user_path=user)
    assert registry.names[: len(load_registry().names)] == load_registry().names  # the bundled ones first
    site_c, site_a = registry.get("ehr_site_c"), registry.get("ehr_site_a")
    assert (site_c.owner, site_c.site) == ("EHR site C", "ehr_site_c")
    assert (site_c.format, site_c.staging_profile, site_c.entities) == (
        site_a.format,
        site_a.staging_profile,
        site_a.entities,
    )
    # an edited file is read again (the cache is keyed by its mtime and size)
    _user_registry(
        user, [{"name": "ehr_site_c", "like": "ehr_site_a"}, {"name": "ehr_site_d", "like": "payer"}]
    )
    assert {"ehr_site_c", "ehr_site_d"} <= set(load_registry(user_path=user).names)
    # no user file: the bundled registry alone
    assert load_registry(user_path=tmp_path / "absent.yaml").names == load_registry().names


def test_the_default_registry_reads_the_data_directory_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RWE_SOURCES_FILE", raising=False)
    _user_registry(tmp_path / "sources.yaml", [{"name": "ehr_site_c", "like": "ehr_site_a"}])
    assert "ehr_site_c" in load_registry().names
    monkeypatch.setenv("RWE_SOURCES_FILE", str(tmp_path / "other.yaml"))
    _user_registry(tmp_path / "other.yaml", [{"name": "clinic_x", "like": "ehr_site_b"}])
    assert "clinic_x" in load_registry().names and "ehr_site_c" not in load_registry().names


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "ehr_site_a", "like": "ehr_site_a"}, "already declared by the bundled registry"),
        ({"name": "ehr_site_c", "like": "nosuch"}, "names no bundled source"),
        ({"name": "ehr_site_c", "like": "ehr_site_a", "format": "xml"}, "expected format"),
    ],
)
def test_bad_user_registries_are_refused_with_the_file_named(tmp_path, entry, message):
    user = _user_registry(tmp_path / "sources.yaml", [entry])
    with pytest.raises(ConfigError, match=message) as refused:
        load_registry(user_path=user)
    assert "sources.yaml" in str(refused.value)


def test_unknown_landing_folders_are_named(tmp_path):
    from rwe_assets.lib.sources import unknown_landing_folders

    registry = load_registry()
    for name in ("ehr_site_a", "ehr_stie_b", ".generating", "_tmp", "stray.csv"):
        (tmp_path / name).mkdir() if "." not in name[1:] else (tmp_path / name).write_text("x")
    assert unknown_landing_folders(tmp_path, registry) == ["ehr_stie_b", "stray.csv"]
    assert unknown_landing_folders(tmp_path / "missing", registry) == []


def test_a_source_may_be_declared_deduplicated():
    document = copy.deepcopy(TINY_REGISTRY)
    document["sources"][0]["deduplicated"] = True
    registry = parse_registry(document)
    assert [s.name for s in registry if s.deduplicated] == [document["sources"][0]["name"]]
    assert not any(s.deduplicated for s in parse_registry(TINY_REGISTRY))
