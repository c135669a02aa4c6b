"""Monitoring checks: a CDM table that loses rows, or whose share of concept_id 0 jumps, since the
previous build gets a warning."""

import dagster as dg

from rwe_assets.defs.cdm.assets import cdm_key
from rwe_assets.defs.quality.table_checks import cdm_monitoring
from rwe_assets.lib.cdm.build import EVENT_TABLES


def record(instance, table, rows, unmapped_pct):
    metadata = {"dagster/row_count": rows, "unmapped_share_pct": unmapped_pct}
    instance.report_runless_asset_event(dg.AssetMaterialization(cdm_key(table), metadata=metadata))


def evaluate(instance) -> dict[tuple[str, str], bool]:
    context = dg.build_asset_check_context(instance=instance)
    return {(r.asset_key.path[-1], r.check_name): r.passed for r in cdm_monitoring(context)}


def test_row_drops_and_unmapped_spikes_warn_against_the_previous_build():
    with dg.instance_for_test() as instance:
        for table in EVENT_TABLES:
            record(instance, table, 1_000, 1.0)
        first = evaluate(instance)
        assert all(first.values())  # no previous build to compare with
        for table in EVENT_TABLES:
            record(instance, table, 1_000, 1.0)
        record(instance, "measurement", 850, 1.0)  # -15 %: more than the 10 % tolerated
        record(instance, "drug_exposure", 990, 3.5)  # -1 %, but 2.5 points more unmapped
        results = evaluate(instance)
    red = {key for key, passed in results.items() if not passed}
    assert red == {("measurement", "row_count_not_dropped"), ("drug_exposure", "unmapped_share_stable")}
