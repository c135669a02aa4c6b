"""Linkage on a generated population (2,000 persons, default noise, all four sources): quality against
the generator's truth, incremental linking equal to a full relink, no identifier in linkage tables."""

from __future__ import annotations

import re
import shutil

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib import lake
from rwe_assets.lib.linkage.crosswalk import TABLES, link
from rwe_assets.lib.linkage.generated import register_person_pii

KEY = "generated-population-test-key"


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    from rwe_assets.synthetic import generate

    out = tmp_path_factory.mktemp("population")
    generate(out, persons=2000, seed=11, batches=2)
    return out


def run(data_dir, lake_dir, batches=None, **options):
    con = duckdb.connect()
    register_person_pii(con, data_dir, "all_pii")
    where = "" if batches is None else f"WHERE _batch_id IN ({', '.join(repr(b) for b in batches)})"
    con.execute(f"CREATE TEMP TABLE person_pii AS SELECT * FROM all_pii {where}")
    return link(con, lake_dir, KEY, truth_dir=data_dir / "truth", **options)


@pytest.fixture(scope="module")
def incremental(population, tmp_path_factory):
    lake_dir = tmp_path_factory.mktemp("incremental")
    first = run(population, lake_dir, ["batch_0001"])
    second = run(population, lake_dir)
    return lake_dir, first, second


def test_quality_on_default_noise(incremental):
    _, _, result = incremental
    assert result.metric("f1", "truth") >= 0.99
    assert result.metric("precision", "truth") >= 0.99
    assert result.metric("persons_merging_twins", "truth") == 0
    assert result.metric("truth_records", "truth") == result.counts["records"]


def test_a_new_batch_is_compared_not_relinked_and_keeps_ids(incremental):
    _, first, second = incremental
    assert second.counts["full_relink"] == 0
    assert second.counts["records_compared_as_new"] == second.counts["records"] - first.counts["records"]
    before = {
        (r["source_system"], r["source_person_id"]): r["person_id"] for r in first.crosswalk.to_pylist()
    }
    after = {
        (r["source_system"], r["source_person_id"]): r["person_id"] for r in second.crosswalk.to_pylist()
    }
    merged = {r["person_id"] for r in lake.read_table(lake.table_path(
        incremental[0], "linkage", "person_history")).to_pylist()} if second.counts["merges_recorded"] else set()  # fmt: skip
    assert all(after[k] == v for k, v in before.items() if v not in merged)


def test_incremental_clusters_equal_a_full_relink_with_the_same_model(population, incremental, tmp_path):
    lake_dir, _, second = incremental
    (tmp_path / "linkage").mkdir()
    shutil.copy(lake_dir / "linkage" / "model.json", tmp_path / "linkage" / "model.json")
    full = run(population, tmp_path)
    assert full.counts["full_relink"] == 1 and not full.trained
    assert partition(full.crosswalk) == partition(second.crosswalk)


def partition(crosswalk):
    groups = {}
    for row in crosswalk.to_pylist():
        groups.setdefault(row["person_id"], set()).add((row["source_system"], row["source_person_id"]))
    return {frozenset(g) for g in groups.values()}


def test_rerun_changes_nothing(population, incremental):
    lake_dir, _, second = incremental
    again = run(population, lake_dir)
    assert again.counts["records_compared_as_new"] == 0
    assert sorted(again.crosswalk.to_pylist(), key=str) == sorted(second.crosswalk.to_pylist(), key=str)


def test_linkage_tables_hold_no_identifier_of_the_sample(population, incremental):
    lake_dir, _, _ = incremental
    con = duckdb.connect()
    register_person_pii(con, population)
    values = set()
    for column in ("given_name", "family_name", "ssn", "address_line", "phone", "birth_date"):
        for (value,) in con.execute(f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM person_pii").fetchall():
            if value and len(value) >= 4:
                values.update({value, value.lower(), value.upper()})
    values |= {v.replace("-", "") for v in values if v[:1].isdigit()}  # SSN, phone, dates without dashes
    # a bare number is an identifier only when long (a year or a house number also occurs in a hash)
    values = {v for v in values if not v.replace("-", "").isdigit() or len(v.replace("-", "")) >= 8}
    found = []
    for name in TABLES:
        table = lake.read_table(lake.table_path(lake_dir, "linkage", name))
        if table is None:
            continue
        assert not [f.name for f in table.schema if pa.types.is_date(f.type)], name  # no birth dates
        for column in table.column_names:
            if column in ("source_person_id", "record_id", "record_id_l", "record_id_r"):
                continue  # source ids, not identifiers of the person
            if not pa.types.is_string(table.schema.field(column).type):
                continue  # tokens are integers and bit strings: a clear value would be text
            cells = {str(v) for v in table.column(column).to_pylist() if v is not None}
            words = {w for cell in cells for w in re.findall(r"[^\W_]+|[\d-]{8,}", cell)} | cells
            found += [(name, column, w) for w in words if w in values][:1]
    text = (lake_dir / "linkage" / "model.json").read_text()
    found += [("model.json", v) for v in values if len(v) >= 5 and v in text][:3]
    assert found == []
