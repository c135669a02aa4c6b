"""DE-SynPUF beneficiary summaries come one file per calendar year, and a payer may deliver an earlier
year after a later one. The person is one record: the later year's statement of it is the current one
whatever batch brought it, so a death date only the later year file states stays in every run (a run
per batch kept the earlier year's row, which states none, because it came in the newer batch)."""

from __future__ import annotations

from collections import Counter

import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental_state
from rwe_assets.lib.staging.build import build_staging
from rwe_assets.lib.staging.incremental import staged_digests
from rwe_assets_tests.lib.staging.test_incremental_staging import stage_in_turn
from rwe_assets_tests.lib.staging.test_synpuf import beneficiary, csv_text, payer_registry, staged

YEAR_2019 = {
    "DE1_0_2019_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 13)})]
    )
}
YEAR_2020 = {  # died in May: only this year's file says so
    "DE1_0_2020_Beneficiary_Summary_File_Sample_1.csv": csv_text(
        "Beneficiary", [beneficiary("AAA", {m: "H1" for m in range(1, 6)}, death="20200515")]
    )
}


@pytest.fixture(autouse=True)
def small_batches_stay_incremental(monkeypatch):
    monkeypatch.setattr(incremental_state, "FULL_BUILD_SHARE", 1.0)


@pytest.mark.parametrize(
    "years", [(YEAR_2019, YEAR_2020), (YEAR_2020, YEAR_2019)], ids=["in_order", "late_2019"]
)
def test_the_later_year_states_the_person_whatever_batch_brought_it(tmp_path, years):
    registry = payer_registry()
    lake_dir, reports = stage_in_turn(tmp_path, registry, "payer", list(years))
    assert [r.mode for r in reports] == ["full", "incremental"]
    (person,) = staged(lake_dir, "person_source")
    assert (str(person["death_date"]), str(person["record_updated"])) == ("2020-05-15", "2020-12-31 00:00:00")
    spans = sorted((str(r["start_date"]), str(r["end_date"])) for r in staged(lake_dir, "enrollment"))
    assert spans == [("2019-01-01", "2019-12-31"), ("2020-01-01", "2020-05-15")]
    # the staged tables are a full build's, and so is the merge reason of the older year (below)
    stepwise = staged_digests(lake_dir)
    assert build_staging(lake_dir, registry, incremental=False).mode == "full"
    assert staged_digests(lake_dir) == stepwise


def test_an_earlier_year_delivered_late_is_a_duplicate_counted_as_merged(tmp_path):
    """Run per batch: the 2019 row takes the person's values over both years (its own file states no
    death), so it duplicates the staged 2020 row, as in a full build (test_incremental_synpuf_late_year)."""
    lake_dir, _ = stage_in_turn(tmp_path, payer_registry(), "payer", [YEAR_2020, YEAR_2019])
    merged = lake.read_table(lake.table_path(lake_dir, "staging", "_merged")).to_pylist()
    reasons = Counter((r["staging_table"], r["_batch_id"], r["reason_code"]) for r in merged)
    assert reasons == Counter({("person_source", "b2", "DUPLICATE_IDENTICAL"): 1})
