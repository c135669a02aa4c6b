"""bench/linkage_external.py: column mapping and evaluation on a tiny hand-written CSV or parquet
file (the external benchmark files themselves live outside the repository and are never read by
tests; the Splink baseline is exercised by the benchmark itself)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb
import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "linkage_external.py"


@pytest.fixture(scope="module")
def ext():
    spec = importlib.util.spec_from_file_location("linkage_external", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CSV = """rid,fn,ln,born,town,mail,entity
1,Julia,Taylor,2015-10-29,London,julia.t@mail.example.org,A
2,Julia,Taylor,2015-10-29,Londn,julia.t@mail.example.org,A
3,Taylor,Julia,2015-10-29,London,,A
4,Noah,Watson,2008-03-23,Bolton,nw@host.test,B
5,Noah,Watson,2008-03-23,Bolton,,B
6,Molly,Bell,2002-01-05,Leeds,,C
7,UNKNOWN,UNKNOWN,1900-01-01,,,D
8,UNKNOWN,UNKNOWN,1900-01-01,,,E
"""


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text(CSV)
    return path


def test_mapping_accepts_aliases_and_rejects_mistakes(ext):
    assert ext.parse_mapping(["fn=given", "ln=surname", "born=dob", "mail=email"]) == {
        "given_name": "fn",
        "family_name": "ln",
        "birth_date": "born",
        "email": "mail",
    }
    for bad in (["fn"], ["fn=nickname"], ["fn=given", "x=first_name"], ["=given"]):
        with pytest.raises(ValueError):
            ext.parse_mapping(bad)


def test_register_maps_columns_and_truth(ext, csv_path):
    con = duckdb.connect()
    mapping = ext.parse_mapping(["fn=given", "ln=family", "born=dob", "town=city", "mail=email"])
    assert ext.register(con, csv_path, mapping, "entity", "rid") == 8
    row = con.execute(
        "SELECT source_system, source_person_id, given_name, family_name, birth_date, city, email "
        "FROM person_pii WHERE source_person_id = '1'"
    ).fetchone()
    assert row == ("external", "1", "Julia", "Taylor", "2015-10-29", "London", "julia.t@mail.example.org")
    assert con.execute("SELECT true_id FROM ext_truth WHERE record_id = 'external|4'").fetchone() == ("B",)
    with pytest.raises(ValueError, match="no column"):
        ext.register(con, csv_path, {"given_name": "first"}, "entity", "rid")


def test_evaluate_links_variants_and_never_placeholders(ext, csv_path):
    mapping = ext.parse_mapping(["fn=given", "ln=family", "born=dob", "town=city", "mail=email"])
    row = ext.evaluate(csv_path, mapping, "entity", "rid")
    assert row["records"] == 8 and row["true_pairs"] == 4  # A: 3 pairs, B: 1 pair
    assert row["precision"] == 1.0  # records 7 and 8 share only placeholders: never merged
    assert row["recall"] == 1.0
    assert row["blocking_recall"] == 1.0  # every true pair reached comparison
    assert ext.line(row, "tiny").split()[:4] == ["tiny", "ours", "8", "4"]


def test_register_reads_parquet(ext, csv_path, tmp_path):
    parquet = tmp_path / "tiny.parquet"
    duckdb.execute(f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{parquet}' (FORMAT parquet)")
    con = duckdb.connect()
    mapping = ext.parse_mapping(["fn=given", "ln=family", "born=dob"])
    assert ext.register(con, parquet, mapping, "entity", "rid") == 8
    assert con.execute("SELECT birth_date FROM person_pii WHERE source_person_id = '4'").fetchone() == (
        "2008-03-23",
    )
