"""A .json Bundle of a type staging does not read fails its file; the error names the field and quotes
the value only when it is one of FHIR's fixed Bundle.type codes: anything else is the sender's text
(a name, an id typed in the wrong field) and the error reaches logs and the UI."""

from __future__ import annotations

import json

import pytest

from rwe_assets.lib.raw_ingest import Status
from rwe_assets_tests.lib.test_fhir_bundles import PATIENT, bundle, entry, ingest


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("history", "found history"),
        ("document", "found document"),
        ("Jane Doe 1931-06-24", "found a Bundle.type that is not a FHIR code"),
        (42, "found a Bundle.type that is not a FHIR code"),
        (None, "found no Bundle.type"),
    ],
)
def test_a_bundle_of_another_type_is_named_by_its_field(tmp_path, kind, expected):
    document = bundle(entry(PATIENT), kind=kind)
    if kind is None:
        del document["type"]
    _, _, report = ingest(tmp_path, {"b.json": json.dumps(document)})
    (result,) = report.files
    assert result.status == Status.FAILED
    assert expected in result.error
    assert "Jane" not in result.error and "1931" not in result.error and "42" not in result.error
