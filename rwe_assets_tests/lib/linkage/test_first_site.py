"""A new deployment's first batch: one clean site without a single duplicate, then a second site.

The prior match probability estimated on such a site is 0 (no pair agrees on a deterministic rule)
and its log odds used to crash training (`math domain error`). It is now bounded away from 0 and 1,
the model is provisional (m kept at its priors, nothing to learn it from) and is fitted again when
the second site brings matches.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage import model
from rwe_assets.lib.linkage.crosswalk import link

KEY = "test-key-for-linkage-tests"
SYLLABLES = ("al", "be", "ca", "do", "el", "fa", "gi", "ha", "io", "ju", "ka", "lo", "ma", "ne", "or")
ENDINGS = ("ric", "na", "lia", "ton", "mar", "vin", "rah", "dolf", "sie", "bert", "ford", "ley", "wood")
COLUMNS = ("source_system", "source_person_id", "given_name", "family_name", "birth_date", "sex", "zip")


def people(n: int, seed: int) -> list[tuple]:
    """n distinct people (name, birth date, sex, ZIP), no two alike on name and birth date."""
    rng = random.Random(seed)
    seen, rows = set(), []
    while len(rows) < n:
        given = (rng.choice(SYLLABLES) + rng.choice(ENDINGS)).title()
        family = (rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + rng.choice(ENDINGS)).title()
        born = (dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(30_000))).isoformat()
        if (given, family, born) in seen:
            continue
        seen.add((given, family, born))
        rows.append((given, family, born, rng.choice("FM"), f"{rng.randrange(10_000, 99_999)}"))
    return rows


def land(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    data = {c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}
    con.register("person_pii", pa.table({**data, "_batch_id": [r[0] + "-b1" for r in rows]}))
    return con


@pytest.fixture(scope="module")
def first_site(tmp_path_factory):
    lake_dir = tmp_path_factory.mktemp("first_site")
    base = people(5_000, seed=3)
    site_a = [("site_a", f"a{i}", *p) for i, p in enumerate(base)]
    result = link(land(site_a), lake_dir, KEY)
    return lake_dir, base, site_a, result


def test_one_clean_site_links_without_crashing(first_site):
    lake_dir, _, _, result = first_site
    assert result.counts["persons"] == 5_000  # nobody merged
    kept = json.loads((lake_dir / "linkage" / "model.json").read_text())
    low, high = model.prior_bounds(5_000)
    assert low <= kept["probability_two_random_records_match"] <= high
    assert 0 < low < high < 1
    assert kept["provisional"] is True  # no matches to learn m from


def test_second_site_is_linked_and_model_refitted(first_site):
    lake_dir, base, site_a, _ = first_site
    shared = base[:600]
    site_b = [("site_b", f"b{i}", *p) for i, p in enumerate(shared)]
    site_b += [("site_b", f"n{i}", *p) for i, p in enumerate(people(400, seed=99))]
    result = link(land(site_a + site_b), lake_dir, KEY)
    crosswalk = {
        (r["source_system"], r["source_person_id"]): r["person_id"] for r in result.crosswalk.to_pylist()
    }
    linked = sum(crosswalk[("site_a", f"a{i}")] == crosswalk[("site_b", f"b{i}")] for i in range(600))
    assert linked == 600
    assert result.trained  # the provisional model was fitted again, now with matches
    kept = json.loads((lake_dir / "linkage" / "model.json").read_text())
    assert kept["provisional"] is False
    # the 400 new people of site B collide with nobody by chance beyond a handful
    assert result.counts["persons"] >= 5_000 + 400 - 5


def test_prior_bounds_never_reach_zero_or_one():
    for records in (2, 500, 5_000, 1_000_000):
        low, high = model.prior_bounds(records)
        assert 0 < low <= high < 1
        assert model.rule_prior(0, records) == low
        assert model.rule_prior(records * records, records) == high
