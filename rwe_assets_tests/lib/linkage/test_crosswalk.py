from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage.crosswalk import build_crosswalk, exact_token, normalize_name

KEY = "test-key"


def pii(rows):
    names = [
        "source_system",
        "source_person_id",
        "given_name",
        "family_name",
        "birth_date",
        "sex",
        "_batch_id",
    ]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


def crosswalk(tmp_path, rows):
    con = duckdb.connect()
    con.register("person_pii", pii(rows))
    table = build_crosswalk(con, tmp_path, KEY)
    return {(r["source_system"], r["source_person_id"]): r for r in table.to_pylist()}


def test_normalization_folds_case_accents_digits_and_punctuation():
    assert normalize_name("  Víctor493 ") == "victor"
    assert normalize_name("O'Brien-Smith") == "o brien smith"
    assert normalize_name("123") is None
    assert exact_token(b"k", "Ann", "Lee", None, "F") is None
    assert exact_token(b"k", "Ann", "Lee", "2000-01-01", "F") != exact_token(
        b"other", "Ann", "Lee", "2000-01-01", "F"
    )


def test_exact_matches_link_and_ids_stay_stable(tmp_path):
    day = dt.date(1980, 1, 2)
    first = crosswalk(
        tmp_path,
        [
            ("site_a", "a1", "Ann12", "Lee", day, "F", "b1"),
            ("site_b", "b7", "ANN", "lee", day, "female", "b1"),
            ("site_a", "a2", "Bob", "Lee", day, "M", "b1"),
        ],
    )
    assert first[("site_a", "a1")]["person_id"] == first[("site_b", "b7")]["person_id"]
    assert first[("site_a", "a1")]["match_method"] == "deterministic"
    assert first[("site_a", "a2")]["match_method"] == "singleton"
    assert first[("site_a", "a2")]["person_id"] != first[("site_a", "a1")]["person_id"]

    second = crosswalk(
        tmp_path,
        [
            ("site_a", "a1", "Ann12", "Lee", day, "F", "b1"),
            ("site_b", "b7", "ANN", "lee", day, "female", "b1"),
            ("site_a", "a2", "Bob", "Lee", day, "M", "b1"),
            ("site_c", "c1", "Bob", "Lee", day, "M", "b2"),  # new batch: joins an existing person
            ("site_c", "c2", "Cy", "Young", day, "M", "b2"),  # new person
        ],
    )
    for record in first:
        assert second[record]["person_id"] == first[record]["person_id"]
    assert second[("site_c", "c1")]["person_id"] == first[("site_a", "a2")]["person_id"]
    assert second[("site_c", "c2")]["person_id"] == max(r["person_id"] for r in first.values()) + 1
    assert second[("site_c", "c2")]["first_seen_batch"] == "b2"
