"""Kaplan-Meier with tied events and censoring at an event time, against values computed by hand
(product-limit estimate, Greenwood variance, the band on log(-log S) that lifelines calls
exponential Greenwood)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from rwe_assets.lib.analytics.survival import kaplan_meier

Z = 1.959963984540054  # the 97.5% normal quantile


def _frame() -> pl.DataFrame:
    # group: 8 persons; two events at 1, a censoring at 2, two events and a censoring at 3, an event
    # at 5, a censoring at 6. Rest: one event at 1, then censored; never falls to one half.
    years = [1, 1, 2, 3, 3, 3, 5, 6] + [1, 2, 3, 4, 5, 6]
    events = [1, 1, 0, 1, 1, 0, 1, 0] + [1, 0, 0, 0, 0, 0]
    return pl.DataFrame(
        {
            "person_id": range(len(years)),
            "in_group": [True] * 8 + [False] * 6,
            "years": [float(y) for y in years],
            "event": events,
            "outcome_before_origin": [False] * len(years),
        }
    )


def _band(survival: float, greenwood_sum: float) -> tuple[float, float]:
    """S^exp(+z se) and S^exp(-z se), se = sqrt(sum d / (n (n - d))) / |log S|."""
    se = math.sqrt(greenwood_sum) / abs(math.log(survival))
    return survival ** math.exp(Z * se), survival ** math.exp(-Z * se)


def test_ties_and_censoring_at_an_event_time_by_hand():
    result = kaplan_meier(_frame(), ("group", "rest"))
    curve = result.curve.filter(pl.col("group") == "group").sort("years")
    # n = 8, 2 events at 1 -> 6/8; censored at 2; at 3: 5 at risk (the one censored at 3 still
    # is), 2 events -> 0.75 * 3/5; at 5: 2 at risk, 1 event -> 0.45 * 1/2
    assert curve["years"].to_list() == [0.0, 1.0, 2.0, 3.0, 5.0, 6.0]
    assert curve["survival"].to_list() == pytest.approx([1.0, 0.75, 0.75, 0.45, 0.225, 0.225])
    assert curve["at_risk"].to_list() == [8, 8, 6, 5, 2, 1]
    assert curve["events"].to_list() == [0, 2, 0, 2, 1, 0]
    sums = {1.0: 2 / (8 * 6), 3.0: 2 / (8 * 6) + 2 / (5 * 3), 5.0: 2 / (8 * 6) + 2 / (5 * 3) + 1 / (2 * 1)}
    for t, greenwood_sum in sums.items():
        row = curve.filter(pl.col("years") == t).row(0, named=True)
        assert (row["ci_lower"], row["ci_upper"]) == pytest.approx(_band(row["survival"], greenwood_sum))
    summary = {r["group"]: r for r in result.summary.iter_rows(named=True)}
    assert summary["group"]["median_years"] == 3.0  # the first time S <= 0.5
    assert (summary["rest"]["persons"], summary["rest"]["events"]) == (6, 1)
    assert summary["rest"]["median_years"] is None  # S stays at 5/6: the median is not reached
