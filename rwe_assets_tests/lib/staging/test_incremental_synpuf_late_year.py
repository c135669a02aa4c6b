"""A DE-SynPUF year file landed after a later year's (issue 26): staged run by run, its rows merge with
the reason a full build of the same raw gives them (every beneficiary row carries values aggregated
over all of the person's year files, so a late year's copy is DUPLICATE_IDENTICAL, not STALE_VERSION)."""

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental_state
from rwe_assets_tests.lib.staging.test_incremental_review_fixes import _year
from rwe_assets_tests.lib.staging.test_incremental_staging import assert_equals_full_build, stage_in_turn
from rwe_assets_tests.lib.staging.test_synpuf import payer_registry


def _merged_reasons(lake_dir) -> list[tuple[str, str]]:
    rows = lake.read_table(lake.table_path(lake_dir, "staging", "_merged")).to_pylist()
    return sorted((r["record_key"], r["reason_code"]) for r in rows if r["staging_table"] == "person_source")


def test_a_late_year_file_merges_as_in_a_full_build(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = payer_registry()
    # 2019 lands after 2020 and agrees with it; BBB's 2018 file is their first (nothing to aggregate)
    years = [_year(2020, 12), _year(2019, 11), _year(2018, 7, bene="BBB")]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "payer", years)
    assert [r.mode for r in reports[1:]] == ["incremental", "incremental"]
    assert _merged_reasons(lake_dir) == [("AAA", "DUPLICATE_IDENTICAL")]
    assert_equals_full_build(lake_dir, registry)


def test_a_late_year_that_quarantines_the_person_in_a_full_build_makes_the_run_full(tmp_path, monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)
    registry = payer_registry()
    # the late 2019 file states a death before the birth 2020 states: a full build quarantines every
    # row of the person (BIRTH_AFTER_DEATH), where the staged 2020 row passed
    years = [_year(2020, 12), _year(2019, 11, death="19450101")]
    lake_dir, reports = stage_in_turn(tmp_path, registry, "payer", years)
    assert reports[-1].mode == "full" and "aggregated over all of them" in reports[-1].reason
    assert not lake.read_table(lake.table_path(lake_dir, "staging", "person_source")).num_rows
