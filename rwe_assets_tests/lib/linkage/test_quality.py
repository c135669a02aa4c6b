"""Quality measures and check verdicts that can fail: a false merge, an F1 below the threshold, and
"not evaluated" (never a pass) without ground truth."""

from __future__ import annotations

import duckdb
import pytest

from rwe_assets.lib.linkage import quality


def scores(crosswalk: list[tuple[str, str, int]], truth: list[tuple[str, str]]) -> dict:
    """pair_scores of a crosswalk (source, id, person_id) against truth (record_id, true_id)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE lk_crosswalk (source_system VARCHAR, source_person_id VARCHAR, person_id BIGINT)"
    )
    con.executemany("INSERT INTO lk_crosswalk VALUES (?, ?, ?)", crosswalk)
    con.execute(
        "CREATE TEMP TABLE lk_truth (record_id VARCHAR, true_id VARCHAR, household_id VARCHAR, twin_of VARCHAR)"
    )
    con.executemany("INSERT INTO lk_truth VALUES (?, ?, NULL, NULL)", truth)
    return quality.pair_scores(con)


def as_metric(measures: dict | None):
    return lambda name, dimension="": None if measures is None else measures.get(name)


def test_a_false_merge_lowers_precision_and_fails_the_check():
    # a1/b1 is a true pair; c1 is another person merged into them
    crosswalk = [("a", "1", 1), ("b", "1", 1), ("c", "1", 1)]
    truth = [("a|1", "P"), ("b|1", "P"), ("c|1", "Q")]
    measured = scores(crosswalk, truth)
    assert measured["precision"] == pytest.approx(1 / 3)
    assert measured["recall"] == 1.0 and measured["persons_merging_people"] == 1
    passed, reason = quality.verdicts(as_metric(measured))["precision_vs_ground_truth"]
    assert passed is False and "precision 0.3333" in reason


def test_correct_links_pass():
    crosswalk = [(s, str(i), i) for i in range(60) for s in ("a", "b")]
    truth = [(f"{s}|{i}", f"P{i}") for i in range(60) for s in ("a", "b")]
    verdicts = quality.verdicts(as_metric(scores(crosswalk, truth)))
    assert verdicts["precision_vs_ground_truth"][0] is True
    assert verdicts["f1_vs_ground_truth"][0] is True


def test_f1_below_threshold_fails():
    # 60 true pairs, 50 missed (split into singletons): recall 1/6
    crosswalk = [("a", str(i), i) for i in range(60)] + [
        ("b", str(i), i if i < 10 else 1000 + i) for i in range(60)
    ]
    truth = [(f"{s}|{i}", f"P{i}") for i in range(60) for s in ("a", "b")]
    measured = scores(crosswalk, truth)
    assert measured["precision"] == 1.0 and measured["f1"] < quality.F1_THRESHOLD
    assert quality.verdicts(as_metric(measured))["f1_vs_ground_truth"][0] is False


def test_without_truth_nothing_is_evaluated():
    verdicts = quality.verdicts(as_metric(None))
    assert {name: passed for name, (passed, _) in verdicts.items()} == {
        "precision_vs_ground_truth": None,
        "f1_vs_ground_truth": None,
    }
    few = {"truth_records": 4, "true_pairs": 2, "predicted_pairs": 0, "precision": 1.0, "f1": 1.0}
    assert all(passed is None for passed, _ in quality.verdicts(as_metric(few)).values())
