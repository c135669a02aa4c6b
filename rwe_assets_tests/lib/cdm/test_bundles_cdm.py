"""The bundled FHIR sample sent as Synthea sends FHIR by default, one transaction Bundle per patient,
builds the same CDM as the same resources sent as bulk NDJSON (by the comparison tool)."""

from __future__ import annotations

import gzip
import json

from rwe_assets.lib.cdm.compare import compare_cdms, format_comparison
from rwe_assets_tests.lib.cdm.small_cdm import build
from rwe_assets_tests.lib.staging.test_fhir_r4 import fhir_registry
from rwe_assets_tests.lib.test_fhir_bundles import (
    SAMPLE_DIR,
    sample_resources,
    to_bundles,
)


def test_the_fhir_sample_as_bundles_builds_the_cdm_of_its_ndjson(tmp_path):
    registry = fhir_registry()
    ndjson = {
        p.name.removesuffix(".gz"): gzip.decompress(p.read_bytes()) for p in SAMPLE_DIR.glob("*.ndjson.gz")
    }
    bundles = {
        name: json.dumps(content, indent=2) for name, content in to_bundles(sample_resources()).items()
    }
    from_ndjson = build(tmp_path / "ndjson", registry, "site", [ndjson])
    from_bundles = build(tmp_path / "bundles", registry, "site", [bundles])
    comparison = compare_cdms(from_ndjson, from_bundles)
    assert comparison.same, format_comparison(comparison)
    assert comparison.table("person").rows_a == 13 and comparison.table("note").rows_a == 1215
