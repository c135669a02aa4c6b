"""What lands but nothing models is counted, by source and entity or FHIR resource type, never dropped
silently; a genomics source's calls are modelled (by lib/genomics/staging.py), header-only files add
nothing."""

from __future__ import annotations

from rwe_assets.lib.raw_ingest import ingest_batch
from rwe_assets.lib.sources import SourceRegistry, load_registry
from rwe_assets.lib.staging.build import build_staging
from rwe_assets_tests.conftest import land
from rwe_assets_tests.lib.genomics.conftest import EDGE_VCF, land_lab, manifest
from rwe_assets_tests.lib.staging import test_fhir_r4 as fhir
from rwe_assets_tests.lib.staging.test_build import synthea_registry


def test_unmodelled_resource_types_and_entities_are_counted(tmp_path):
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    provenance = {"resourceType": "Provenance", "id": "pv1", "target": [{"reference": "Patient/p1"}]}
    basic = {"resourceType": "Basic", "id": "b1"}  # a type the registry does not list: other_resource
    land(landing, "site", "b1", {"Patient.000.ndjson": fhir.ndjson(fhir.patient("p1")),
                                 "Provenance.000.ndjson": fhir.ndjson(provenance, dict(provenance, id="pv2")),
                                 "Basic.000.ndjson": fhir.ndjson(basic)})  # fmt: skip
    registry = fhir.fhir_registry()
    ingest_batch(lake_dir, landing, registry.get("site"), "b1")
    assert build_staging(lake_dir, registry).not_modelled == {("site", "Provenance"): 2, ("site", "Basic"): 1}


def test_header_only_files_and_genomics_calls_are_not_listed(tmp_path):
    lake_dir, landing = tmp_path / "lake", tmp_path / "landing"
    synthea = synthea_registry()
    land(
        landing,
        "site",
        "b1",
        {"claims.csv": ",".join(synthea.get("site").entity("claims").required_columns) + "\n"},
    )
    ingest_batch(lake_dir, landing, synthea.get("site"), "b1")
    lab = load_registry().get("lab")
    people = [
        ("S1", "P1", "GRCh38", "edge.vcf.gz"),
        ("S2", "P2", "GRCh38", "edge.vcf.gz"),
        ("S3", "P3", "GRCh38", "edge.vcf.gz"),
    ]
    land_lab(landing, "b1", {"edge.vcf.gz": EDGE_VCF, "sample_manifest.csv": manifest(people)})
    ingest_batch(lake_dir, landing, lab, "b1")
    assert build_staging(lake_dir, SourceRegistry((*synthea, lab))).not_modelled == {}
