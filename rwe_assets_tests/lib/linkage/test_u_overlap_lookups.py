"""u estimated with list overlaps looked up (u_sample.overlap_lookups) equals Splink's estimate over the
original comparisons, on a site like a Synthea export: every record holds a driver's licence and a
passport of one type and issuer, so the identifier comparison never stops early and every sampled
pair reaches its list checks; some people are registered twice, with a number one character off."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage import model, u_sample
from rwe_assets.lib.linkage.crosswalk import tokenize

KEY = "test-key-for-linkage-tests"
IDENTIFIERS = pa.list_(pa.struct([("type", pa.string()), ("system", pa.string()), ("value", pa.string())]))
NAMES = ["Mary", "Robert", "Noah", "Isabella", "John", "Ann", "Lee", "Garcia", "Nguyen", "Brown"]


def _site(n: int = 240, seed: int = 3) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for person in range(n):
        licence, passport = f"S{rng.randrange(10**8):08d}", f"X{rng.randrange(10**8):08d}X"
        if person % 8 == 0:  # registered again: the same passport, the licence one digit off
            rows.append(_row(rng, f"p{person}b", licence[:-1] + str((int(licence[-1]) + 1) % 10), passport))
        rows.append(_row(rng, f"p{person}", licence, passport))
    columns = {c: [r[c] for r in rows] for c in rows[0] if c != "identifiers"}
    return pa.table({**columns, "identifiers": pa.array([r["identifiers"] for r in rows], type=IDENTIFIERS)})


def _row(rng: random.Random, pid: str, licence: str, passport: str) -> dict:
    return {
        "source_system": "site",
        "source_person_id": pid,
        "_batch_id": "b1",
        "given_name": rng.choice(NAMES),
        "family_name": rng.choice(NAMES),
        "birth_date": f"19{rng.randrange(30, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
        "sex": rng.choice(["F", "M"]),
        "identifiers": [
            {"type": "drivers_license", "system": "urn:state:MA", "value": licence},
            {"type": "passport", "system": "urn:country:US", "value": passport},
        ],
    }


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("person_pii", _site())
    tokenize(con, KEY)
    model.term_frequencies(con, "lk_tokens")
    model.register_input(con, "lk_tokens")
    return con


def _identifier_settings() -> dict:
    """The model's settings with the identifier comparison alone (Splink's u estimate of every
    comparison takes seconds; the others hold no list)."""
    settings = {k: v for k, v in model.prior_settings(tf=True).items() if k not in model.EXTRA_KEYS}
    return {
        **settings,
        "comparisons": [c for c in settings["comparisons"] if c["output_column_name"] == "identifier"],
    }


def _u(settings: dict) -> dict[tuple[str, str], float]:
    return {
        (c["output_column_name"], level["label_for_charts"]): level.get("u_probability")
        for c in settings["comparisons"]
        for level in c["comparison_levels"]
        if not level.get("is_null_level")
    }


def _splink_u(con, settings: dict) -> dict:
    linker, _ = model._linker(con, settings)
    linker.training.estimate_u_using_random_sampling(max_pairs=model.U_MAX_PAIRS, seed=model.SEED)
    return linker.misc.save_model_to_json()


# every record (2 pairs per record) and a sample of a third of them, drawn by Splink's own rule
@pytest.mark.parametrize("max_pairs", [model.U_MAX_PAIRS, 4_000])
def test_u_with_overlap_lookups_equals_splinks(con, monkeypatch, max_pairs):
    monkeypatch.setattr(model, "U_MAX_PAIRS", max_pairs)
    settings = _identifier_settings()
    ours = model._with_u(con, settings)
    splink = _splink_u(con, settings)
    assert _u(ours) == {key: u if u is not None else 1e-6 for key, u in _u(splink).items() if key in _u(ours)}
    assert _u(ours)[("identifier", "one character apart")] > 1e-6  # the licences one digit off were seen
    # the original conditions are kept: the lookups only exist for the u sample
    assert all(
        lv["sql_condition"] == orig["sql_condition"]
        for c, o in zip(ours["comparisons"], settings["comparisons"], strict=True)
        for lv, orig in zip(c["comparison_levels"], o["comparison_levels"], strict=True)
    )


def test_overlap_lookups_replace_the_rare_overlaps_and_keep_the_common_ones(con):
    """The numbers (and their typo neighbourhoods) meet in few pairs: looked up; the document kind is
    shared by every pair: list_has_any stays. Each lookup gives list_has_any's value on every pair."""
    settings = _identifier_settings()
    identifier = settings["comparisons"]
    sampled = u_sample.sample(con, settings, model.U_MAX_PAIRS, model.SEED)
    fast = u_sample.overlap_lookups(con, identifier, sampled)
    conditions = " ".join(lv["sql_condition"] for lv in fast[0]["comparison_levels"])
    assert "list_has_any(t_id_offer_l" not in conditions and "list_has_any(t_idnear_offer_l" not in conditions
    assert "list_has_any(t_idkind_offer_l" in conditions
    columns = sorted(model._level_columns({"comparisons": fast + identifier}))
    sides = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in columns)
    levels = [
        (lv["sql_condition"], f["sql_condition"])
        for lv, f in zip(identifier[0]["comparison_levels"], fast[0]["comparison_levels"], strict=True)
    ]
    differ, agree = con.execute(
        f"""SELECT count(*) FILTER ({" OR ".join(f"({a}) IS DISTINCT FROM ({b})" for a, b in levels if a != "ELSE")}),
                   count(*) FILTER ({levels[1][0]})
            FROM (SELECT {sides} FROM lk_u_sample l JOIN lk_u_sample r ON l.u_rid < r.u_rid)"""
    ).fetchone()
    assert differ == 0
    assert agree > 0  # the same passport: pairs where the lookup says true
