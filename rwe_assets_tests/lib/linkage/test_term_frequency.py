"""Term-frequency adjustment: agreeing on a common name is weaker evidence than agreeing on a rare one
(the false merges left on the public sets were common names with other birth dates)."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import model
from rwe_assets.lib.linkage.crosswalk import link

KEY = "test-key-for-linkage-tests"
# enough records to train (model.MIN_RECORDS_TO_TRAIN): only a trained model is adjusted
N = 260
COLUMNS = (
    "source_system",
    "source_person_id",
    "_batch_id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "city",
)


def _row(i: str, given: str, family: str, born: dt.date, city: str) -> dict:
    return dict(
        source_system="site", source_person_id=i, _batch_id="b1", given_name=given, family_name=family,
        birth_date=born.isoformat(), sex="F", city=city,
    )  # fmt: skip


def _population() -> list[dict]:
    """N other Mary Smiths (another birth date and city each), N people of rare names, and two pairs
    of records that agree on every field: one pair of Mary Smiths, one of a rare name."""
    rows = [_row(f"s{i}", "Mary", "Smith", dt.date(1940, 1, 3) + dt.timedelta(days=97 * i), f"Town{i:02d}x")
            for i in range(N)]  # fmt: skip
    rows += [_row(f"r{i}", f"Name{chr(97 + i % 26)}{chr(97 + i // 26)}q", f"Fam{chr(97 + i % 26)}{chr(98 + i // 26)}z",
                  dt.date(1950, 2, 5) + dt.timedelta(days=53 * i), f"Town{i:02d}y") for i in range(N)]  # fmt: skip
    born = dt.date(1982, 6, 14)
    rows += [_row(i, "Mary", "Smith", born, "Harbourton") for i in ("common_a", "common_b")]
    rows += [_row(i, "Zebulonia", "Quarrington", born, "Harbourton") for i in ("rare_a", "rare_b")]
    return rows


def _weights(tmp_path) -> dict[str, float]:
    rows = _population()
    con = duckdb.connect()
    con.register("person_pii", pa.table({c: [r[c] for r in rows] for c in COLUMNS}))
    link(con, tmp_path, KEY)
    pairs = con.execute(
        "SELECT record_id_l, match_weight FROM lk_scored WHERE (record_id_l, record_id_r) IN "
        "(('site|common_a', 'site|common_b'), ('site|rare_a', 'site|rare_b'))"
    ).fetchall()
    return {record.split("|")[1]: weight for record, weight in pairs}


def test_agreeing_on_a_rare_name_weighs_more_than_on_a_common_one(tmp_path):
    weights = _weights(tmp_path)
    # both pairs agree on given and family name, birth date, sex and city: without the adjustment their
    # weights are equal. Mary and Smith are each N + 2 records, the rare names 2: each name adds
    # log2((N + 2) / 2) bits.
    assert weights["rare_a"] - weights["common_a"] > 2 * math.log2((N + 2) / 2) - 0.5


def test_frequencies_are_shares_of_the_records_holding_a_value():
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE lk_tokens AS SELECT * FROM (VALUES (1, 10, 7, 5), (1, 10, NULL, 5), (2, NULL, 7, 5), "
        "(1, 11, 8, 6)) t(t_given, t_family, t_zip, t_city)"
    )
    model.term_frequencies(con)
    given = dict(con.execute("SELECT t_given, tf_t_given FROM lk_tf_t_given").fetchall())
    family = dict(con.execute("SELECT t_family, tf_t_family FROM lk_tf_t_family").fetchall())
    assert given == {1: 0.75, 2: 0.25}
    assert family == {10: 2 / 3, 11: 1 / 3}  # a missing value is no value: not counted


def test_name_and_zip_levels_carry_the_adjustment():
    levels = {
        (c["output_column_name"], lv["label_for_charts"]): lv.get("tf_adjustment_column")
        for c in model.comparisons()
        for lv in c["comparison_levels"]
    }
    assert levels[("given", "exact, or both names swapped")] == "t_given"
    assert levels[("family", "exact, or both names swapped")] == "t_family"
    assert levels[("contact", "same ZIP")] == "t_zip"
    # a city shared by a county's records (historical set: "wales", "london") says less than a village
    assert levels[("contact", "same city")] == "t_city"
