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
