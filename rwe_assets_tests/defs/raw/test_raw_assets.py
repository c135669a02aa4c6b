"""The raw layer through Dagster: the bundled sample end to end, metadata, checks and failures."""

from __future__ import annotations

import csv
import shutil

import dagster as dg
import pytest

from rwe_assets.cli import SAMPLE_DIR
from rwe_assets.defs.raw import build_raw_assets, raw_key
from rwe_assets.defs.raw.assets import RECONCILIATION_CHECK
from rwe_assets.lib.sources import load_registry
from rwe_assets.resources import RweConfig
from rwe_assets_tests.conftest import land


def materialize_batch(registry, source, batch, data_dir, instance):
    key = f"{source}__{batch}"
    instance.add_dynamic_partitions(f"batches_{source}", [key])
    assets = [a for a in build_raw_assets(registry) if a.op.name == f"raw_{source}"]
    return dg.materialize(
        assets,
        partition_key=key,
        instance=instance,
        resources={"rwe": RweConfig(data_dir=str(data_dir))},
        raise_on_error=False,
    )


def materializations(result) -> dict[str, dict]:
    return {
        m.asset_key.to_user_string(): m.metadata
        for m in (e.event_specific_data.materialization for e in result.get_asset_materialization_events())
    }


def test_bundled_sample_raw_layer_end_to_end(tmp_path):
    registry = load_registry()
    shutil.copytree(SAMPLE_DIR / "synthea27", tmp_path / "landing" / "ehr_sample" / "synthea27")
    expected = {}
    for path in sorted((SAMPLE_DIR / "synthea27").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            expected[f"raw/ehr_sample/{path.stem}"] = sum(1 for _ in csv.reader(handle)) - 1

    with dg.instance_for_test() as instance:
        result = materialize_batch(registry, "ehr_sample", "synthea27", tmp_path, instance)
        assert result.success
        metadata = materializations(result)
        assert {k: m["rows_added"].value for k, m in metadata.items()} == expected
        assert metadata["raw/ehr_sample/patients"]["dagster/row_count"].value == 27
        columns = [
            c.name for c in metadata["raw/ehr_sample/patients"]["dagster/column_schema"].schema.columns
        ]
        assert columns[:2] == ["Id", "BIRTHDATE"] and columns[-5:] == [
            "_batch_id",
            "_source_file",
            "_file_sha256",
            "_line_number",
            "_ingested_at",
        ]
        checks = result.get_asset_check_evaluations()
        assert len(checks) == len(expected) and all(c.passed for c in checks)

        rerun = materialize_batch(registry, "ehr_sample", "synthea27", tmp_path, instance)
        assert rerun.success
        assert all(m["rows_added"].value == 0 for m in materializations(rerun).values())
        assert materializations(rerun)["raw/ehr_sample/patients"]["dagster/row_count"].value == 27


def test_a_bad_file_fails_the_run_naming_file_and_line(registry, tmp_path):
    land(
        tmp_path / "landing",
        "clinic",
        "b1",
        {
            "patients.csv": "Id,BIRTHDATE,FIRST\np1,2001-02-03,Ann\n",
            "conditions.csv": "PATIENT,CODE_X\np1,C1\n",
        },
    )
    with dg.instance_for_test() as instance:
        result = materialize_batch(registry, "clinic", "b1", tmp_path, instance)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert "1 file(s) of batch b1 could not be read" in str(failure.event_specific_data.error)
        patients = materializations(result)["raw/clinic/patients"]
        assert patients["rows_added"].value == 1


def test_the_reconciliation_check_fails_when_a_row_is_lost(registry, tmp_path):
    from deltalake import DeltaTable

    land(tmp_path / "landing", "clinic", "b1", {"patients.csv": "Id,BIRTHDATE,FIRST\np1,a,b\np2,c,d\n"})
    with dg.instance_for_test() as instance:
        assert materialize_batch(registry, "clinic", "b1", tmp_path, instance).success
        DeltaTable(str(tmp_path / "lake" / "raw" / "clinic" / "patients")).delete("_line_number = 2")
        result = materialize_batch(registry, "clinic", "b1", tmp_path, instance)
        check = next(
            c
            for c in result.get_asset_check_evaluations()
            if c.asset_key == raw_key("clinic", "patients") and c.check_name == RECONCILIATION_CHECK
        )
        assert not check.passed
        assert check.metadata["rows_unaccounted"].value == 1


def test_a_partition_of_another_source_is_refused(registry, tmp_path):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("batches_clinic", ["fhir__b1"])  # typed into the launchpad
        assets = [a for a in build_raw_assets(registry) if a.op.name == "raw_clinic"]
        with pytest.raises(dg.Failure, match="belongs to source fhir"):
            dg.materialize(
                assets,
                partition_key="fhir__b1",
                instance=instance,
                resources={"rwe": RweConfig(data_dir=str(tmp_path))},
            )


def test_warnings_of_a_file_read_with_undeclared_vcf_fields_reach_the_metadata(tmp_path):
    from rwe_assets_tests.lib.genomics.conftest import manifest
    from rwe_assets_tests.lib.genomics.test_tolerant_parsing import UNDECLARED_VCF

    registry = load_registry()
    land(tmp_path / "landing", "lab", "b1", {
        "run.vcf": UNDECLARED_VCF,
        "sample_manifest.csv": manifest([("U1", "P1", "", "run.vcf"), ("U2", "P2", "", "run.vcf")]),
    })  # fmt: skip
    with dg.instance_for_test() as instance:
        result = materialize_batch(registry, "lab", "b1", tmp_path, instance)
        assert result.success
        warnings = materializations(result)["raw/lab/variant_call"]["warnings"].value
    assert "run.vcf: undeclared FORMAT field DP" in warnings and "undeclared INFO field XX" in warnings
