"""The clustered layout of the person-scoped staging tables (lib/staging/layout.py): an incremental
merge reads only the files that can hold the persons of the rows it replaces (a batch of new rows
reads none), and fails instead of leaving a duplicate when a replaced row lies elsewhere; a full
build writes the tables sorted by person."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from rwe_assets.lib import lake
from rwe_assets.lib.staging import incremental
from rwe_assets.lib.staging.incremental_state import Plan, staging_path

PERSONS = ("p1", "p2", "p3", "p4")
KEYS = ["source_system", "record_key", "source_person_id"]


def rows(person: str, keys: range, value: str = "v1") -> pa.Table:
    return pa.table(
        {
            "source_system": ["site"] * len(keys),
            "record_key": [f"{person}-{k}" for k in keys],
            "source_person_id": [person] * len(keys),
            "value": [value] * len(keys),
        }
    )


def clustered_table(lake_dir, persons=PERSONS) -> DeltaTable:
    """staging/event in one file per person (as a clustered full write lays it out, in small)."""
    path = staging_path(lake_dir, "event")
    for person in persons:
        lake.write(path, rows(person, range(50)), mode="append")
    return DeltaTable(str(path))


def merge(lake_dir, upserts, deletes, prior, plan=None):
    empty = upserts.slice(0, 0)
    incremental.merge_table(
        lake_dir, "event", upserts, deletes if deletes is not None else empty,
        plan or Plan("incremental", "test"), ["source_system", "record_key"], prior,
    )  # fmt: skip


def content(lake_dir) -> list[tuple]:
    con = duckdb.connect()
    lake.register_parquet_view(con, "t", staging_path(lake_dir, "event"))
    found = con.execute("SELECT * FROM t ORDER BY ALL").fetchall()
    con.close()
    return found


def last_merge(lake_dir) -> dict:
    return DeltaTable(str(staging_path(lake_dir, "event"))).history(1)[0]["operationMetrics"]


def test_a_correction_reads_only_the_file_of_its_person(tmp_path):
    clustered_table(tmp_path)
    corrected = rows("p3", range(3, 4), value="v2")
    merge(tmp_path, corrected, None, corrected.select(["source_system", "record_key", "source_person_id"]))
    metrics = last_merge(tmp_path)
    assert (metrics["num_target_files_scanned"], metrics["num_target_files_skipped_during_scan"]) == (1, 3)
    assert (metrics["num_target_rows_updated"], metrics["num_target_rows_inserted"]) == (1, 0)
    assert ("site", "p3-3", "p3", "v2") in content(tmp_path) and len(content(tmp_path)) == 200


def test_new_rows_read_no_file(tmp_path):
    clustered_table(tmp_path)
    new = pa.concat_tables([rows("p2", range(50, 60)), rows("p9", range(5))])
    merge(tmp_path, new, None, new.slice(0, 0).select(["source_system", "record_key", "source_person_id"]))
    metrics = last_merge(tmp_path)
    assert metrics["num_target_files_scanned"] == 0 and metrics["num_target_rows_inserted"] == 15
    assert len(content(tmp_path)) == 215


def test_deletes_read_only_their_persons_files(tmp_path):
    clustered_table(tmp_path)
    gone = pa.concat_tables([rows("p1", range(2)), rows("p4", range(50))])
    keys = gone.select(["source_system", "record_key", "source_person_id"])
    merge(tmp_path, rows("p1", range(1)).slice(0, 0), keys, keys)
    metrics = last_merge(tmp_path)
    assert (metrics["num_target_files_scanned"], metrics["num_target_rows_deleted"]) == (2, 52)
    assert {r[2] for r in content(tmp_path)} == {"p1", "p2", "p3"} and len(content(tmp_path)) == 148


def test_a_replaced_row_outside_the_prior_rows_is_refused_not_duplicated(tmp_path):
    clustered_table(tmp_path)
    corrected = rows("p3", range(3, 4), value="v2")
    wrong = pa.table(  # the scope named another person's file: the merge would insert a second p3-3
        {"source_system": ["site"], "record_key": ["p3-3"], "source_person_id": ["p1"]}
    )
    with pytest.raises(RuntimeError, match="outside the scope"):
        merge(tmp_path, corrected, None, wrong)


def test_a_full_build_writes_the_person_tables_sorted_by_person(tmp_path):
    from rwe_assets.lib.staging.build import build_staging
    from rwe_assets_tests.lib.staging.test_incremental_staging import CASES, stage_in_turn

    registry_of, source, batches = CASES["orphans adopted"]
    registry = registry_of()
    lake_dir, _ = stage_in_turn(tmp_path, registry, source, batches)
    assert build_staging(lake_dir, registry, incremental=False).mode == "full"
    for name in ("visit", "event", "person_source"):
        table = DeltaTable(str(staging_path(lake_dir, name))).to_pyarrow_table()
        persons = table["source_person_id"].to_pylist()
        assert persons == sorted(persons) and len(set(persons)) > 1, name


def test_a_table_sorted_range_by_range_equals_one_sort(sample_published, tmp_path, monkeypatch):
    """At 1M persons one ORDER BY of the event table filled the disk with its spill: a large table is
    split by person range and each range sorted alone (layout.sorted_reader). Forced here on the
    Synthea sample (ranges of 500 rows), every table must come out as the one sort writes it: same
    rows, same order, same types."""
    import shutil

    from rwe_assets.lib.sources import load_registry
    from rwe_assets.lib.staging import layout
    from rwe_assets.lib.staging.build import build_staging

    lake_dir = tmp_path / "lake"
    shutil.copytree(sample_published / "lake" / "raw", lake_dir / "raw")

    def tables():
        build_staging(lake_dir, load_registry(), incremental=False)
        return {
            name: DeltaTable(str(staging_path(lake_dir, name))).to_pyarrow_table()
            for name in layout.CLUSTERED
        }

    one_sort = tables()
    ranges, in_turn = [], layout._in_turn
    monkeypatch.setattr(
        layout,
        "_in_turn",
        lambda con, queries, schema: ranges.append(len(queries)) or in_turn(con, queries, schema),
    )
    monkeypatch.setattr(layout, "RANGE_ROWS", 500)
    monkeypatch.setattr(layout, "SORT_ROWS", 500)
    by_range = tables()
    assert max(ranges) > 3  # the range path ran, with several ranges
    for name in layout.CLUSTERED:
        assert by_range[name].schema == one_sort[name].schema, name
        assert by_range[name].to_pylist() == one_sort[name].to_pylist(), name


@pytest.mark.parametrize(("sort_rows", "ranged"), [(100, False), (99, True)])
def test_only_a_table_over_sort_rows_is_written_by_range(tmp_path, monkeypatch, sort_rows, ranged):
    from rwe_assets.lib.staging import layout

    monkeypatch.setattr(layout, "RANGE_ROWS", 10)
    monkeypatch.setattr(layout, "SORT_ROWS", sort_rows)
    con = duckdb.connect()
    query = "SELECT 'p' || (i % 7) AS source_person_id, 's' AS source_system, i::VARCHAR AS record_key FROM range(100) t(i)"
    rows = layout.sorted_reader(con, "event", query, 100, tmp_path / "ranges").read_all()
    assert (tmp_path / "ranges").exists() == ranged
    assert rows.to_pylist() == con.sql(f"{query} ORDER BY {layout.ORDER}").fetch_arrow_table().to_pylist()


@pytest.mark.parametrize("bounds", [["b"], ["b", "d"], ["a", "b", "c", "d", "e"]])
def test_ranges_follow_the_sort_order_nulls_last(bounds):
    """A row's range (layout._range_of) never decreases along ORDER BY person (NULLs last), and each
    range holds the persons from its lower bound to below the next."""
    from rwe_assets.lib.staging import layout

    con = duckdb.connect()
    persons = ["", "a", "aa", "b", "b0", "c", "d", "dz", "e", "zz", None]
    con.execute("CREATE TABLE t (source_person_id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[p] for p in persons])
    found = con.execute(f"SELECT source_person_id, {layout._range_of(bounds)} FROM t ORDER BY 1").fetchall()
    expected = [(p, len(bounds) if p is None else sum(b <= p for b in bounds)) for p in persons]
    assert found == expected
