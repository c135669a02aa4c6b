"""Linkage at scale: no blocking rule lets a common value pair every record holding it, and the prior
is re-estimated without holding every scored pair in Python (the 1 M benchmark ran out of memory on
both: docs/linkage.md, "Benchmark")."""

from __future__ import annotations

import datetime as dt
import math
import string

import duckdb
import numpy as np
import pyarrow as pa

from rwe_assets.lib.linkage import model
from rwe_assets.lib.linkage.crosswalk import link

KEY = "test-key-for-linkage-tests"
N = 300


def _letters(i: int) -> str:
    return string.ascii_lowercase[i % 26] + string.ascii_lowercase[i // 26]


def test_one_family_name_in_one_postcode_is_not_one_block(tmp_path):
    """N Smiths of one postcode, each with another first name, city and birth date: postcode with family
    name alone paired all of them (N * (N - 1) / 2 = 44,850 pairs); capped, what is compared are the
    few that share a birth year, far fewer than one pair per record on each blocking key."""
    born = [dt.date(1930, 1, 3) + dt.timedelta(days=97 * i) for i in range(N)]
    table = pa.table(
        {
            "source_system": ["site"] * N,
            "source_person_id": [f"p{i}" for i in range(N)],
            "_batch_id": ["b1"] * N,
            "given_name": [f"Name{_letters(i)}q" for i in range(N)],
            "family_name": ["Smith"] * N,
            "birth_date": [d.isoformat() for d in born],
            "sex": ["F"] * N,
            "zip": ["02139"] * N,
            "city": [f"Town{_letters(i)}x" for i in range(N)],
        }
    )
    con = duckdb.connect()
    con.register("person_pii", table)
    result = link(con, tmp_path, KEY)
    pairs = result.counts["pairs_scored_this_run"]
    assert pairs < 3 * N, pairs
    assert con.execute("SELECT count(k_zip_family) FROM lk_tokens").fetchone()[0] == 0


def _exact_prior(factors: np.ndarray, start: float, total: float, low: float, high: float) -> float:
    """The fixed point over every pair's own Bayes factor (what refine_prior computed before binning)."""
    lam = start
    for _ in range(model.PRIOR_ROUNDS):
        odds = math.log2(lam / (1 - lam))
        new = min(max(float((1 / (1 + np.exp2(-(factors + odds)))).sum()) / total, low), high)
        done = abs(new - lam) <= 1e-4 * lam
        lam = new
        if done:
            break
    return lam


def test_refined_prior_from_binned_weights_matches_the_per_pair_fixed_point():
    rng = np.random.default_rng(3)
    # matches on few distinct weights (many pairs per bin: the counts matter), the rest spread
    matches = rng.integers(8, 25, 3_000) + 0.3
    others = rng.normal(-12, 6, 200_000)
    start, records = 1e-4, 5_000
    weights = np.concatenate([matches, others]) + math.log2(start / (1 - start))
    con = duckdb.connect()
    con.register("weights", pa.table({"match_weight": weights}))
    con.execute(
        "CREATE TEMP TABLE scored AS SELECT match_weight, 0.0 AS match_probability FROM weights "
        "UNION ALL SELECT NULL, NULL"
    )
    settings = {"trained": True, "probability_two_random_records_match": start}
    refined = model.refine_prior(con, settings, records, "scored")
    low, high = model.prior_bounds(records)
    expected = _exact_prior(
        weights - math.log2(start / (1 - start)), start, records * (records - 1) / 2, low, high
    )
    lam = refined["probability_two_random_records_match"]
    assert lam > 1.5 * start  # more matches (3,000 in 12.5 M pairs) than the starting prior expects
    assert abs(lam - expected) <= 1e-3 * expected
    shift = math.log2(lam / (1 - lam)) - math.log2(start / (1 - start))
    rescored = con.execute("SELECT match_weight FROM scored WHERE match_weight IS NOT NULL").fetchnumpy()
    assert np.allclose(np.sort(rescored["match_weight"]), np.sort(weights + shift), atol=1e-9)
