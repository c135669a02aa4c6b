"""The fast paths of linkage give what the slow ones gave: model.score (our own DuckDB query over the
model's m/u) scores the same pairs with the same weights as Splink's predict_within / predict_between,
and a record's fingerprint (DuckDB's hash of its tokens) changes whenever a token does, even one
moved between fields."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import random

import duckdb
import pyarrow as pa
import pytest

from rwe_assets.lib.linkage import model
from rwe_assets.lib.linkage.crosswalk import tokenize

KEY = "test-key-for-linkage-tests"
IDENTIFIERS = pa.list_(pa.struct([("type", pa.string()), ("system", pa.string()), ("value", pa.string())]))
GIVEN = ["Mary", "Marie", "Robert", "Bob", "Noah", "Onah", "Isabella", "John", "Jon", "Ann", "Zebulonia"]
FAMILY = ["Smith", "Smyth", "Jones", "Quarrington", "Garcia", "Lee", "Nguyen", "Brown"]
CITIES = ["Boston", "Salem", "Lowell", None]


def _people(n: int = 300, seed: int = 5) -> pa.Table:
    """n records of n // 2 people: each person twice, the second record with a typo, a nickname, a
    swapped day and month, another phone or a missing field; identifiers, emails and common names so
    that every blocking rule (the exploded identifier one too) and every kind of level occurs."""
    rng = random.Random(seed)
    rows = []
    for person in range(n // 2):
        born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(30_000))
        base = {
            "given_name": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY),
            "birth_date": born.isoformat(),
            "sex": rng.choice(["F", "M"]),
            "ssn": f"{rng.randrange(100, 600)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
            if rng.random() < 0.7
            else None,
            "address_line": f"{rng.randrange(1, 400)} {rng.choice(['Main', 'Oak', 'Elm'])} Street",
            "city": rng.choice(CITIES),
            "zip": rng.choice(["02139", "01970", "01852"]),
            "phone": f"617555{rng.randrange(1000, 9999)}",
            "email": f"p{person}.{rng.choice(FAMILY).lower()}@mail.org" if rng.random() < 0.6 else None,
            "identifiers": [{"type": "mrn", "system": "http://h.example/mrn", "value": f"M{person:05d}"}]
            if rng.random() < 0.5
            else None,
        }
        variant = dict(base)
        change = rng.randrange(6)
        if change == 0:
            variant["given_name"] = base["given_name"][:-1] + "x"
        elif change == 1:
            variant["given_name"], variant["family_name"] = base["family_name"], base["given_name"]
        elif change == 2 and born.day <= 12:
            variant["birth_date"] = born.replace(month=born.day, day=born.month).isoformat()
        elif change == 3:
            variant["phone"], variant["ssn"] = None, None
        elif change == 4:
            variant["birth_date"] = None
        else:  # nothing in common but one identifier among others: only the exploded lists meet
            mrn = {"type": "mrn", "system": "http://h.example/mrn", "value": f"M{person:05d}"}
            base["identifiers"] = [mrn, {"type": "passport", "system": None, "value": f"X{person:07d}"}]
            licence = {"type": "drivers_license", "system": None, "value": f"S{person:08d}"}
            variant = {key: None for key in base} | {"family_name": "Other", "identifiers": [licence, mrn]}
        for copy_no, row in enumerate((base, variant)):
            rows.append(
                {
                    **row,
                    "source_system": f"site_{copy_no}",
                    "source_person_id": f"p{person}",
                    "_batch_id": "b1",
                }
            )
    columns = {c: [r[c] for r in rows] for c in rows[0] if c != "identifiers"}
    return pa.table({**columns, "identifiers": pa.array([r["identifiers"] for r in rows], type=IDENTIFIERS)})


def _splink_scores(con, settings: dict, new_table: str, old_table: str | None) -> None:
    """TEMP TABLE splink_scored: what model.score computed with Splink before it was our own query."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    clean = {k: v for k, v in copy.deepcopy(settings).items() if k not in model.EXTRA_KEYS}
    linker = Linker(db_api.register(new_table), clean, log_level=logging.WARNING)
    for col in model.TF_COLUMNS:
        lookup = db_api.register(f"lk_tf_{col}", table_name=f"lk_tf_{col}_splink")
        linker.table_management.register_term_frequency_lookup(lookup, col)
    new = db_api.register(new_table, table_name=f"{new_table}_new")
    parts = [linker.inference.predict_within(new, warning_mode="never")]
    if old_table is not None:
        old = db_api.register(old_table, table_name=f"{old_table}_old")
        parts.append(linker.inference.predict_between(old, new, warning_mode="never"))
    weights = ", ".join(f"mw_{c['output_column_name']}" for c in settings["comparisons"])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE splink_scored AS "
        + " UNION ALL ".join(
            f"SELECT least(record_id_l, record_id_r) AS record_id_l, greatest(record_id_l, record_id_r) AS "
            f"record_id_r, match_weight, match_probability, {weights} FROM {part.physical_name}"
            for part in parts
        )
    )


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    """Tokens of _people(): lk_all_input (every record), lk_old_input (about 40 %) and lk_new_input (the rest)."""
    con = duckdb.connect()
    con.register("person_pii", _people())
    tokenize(con, KEY)
    model.term_frequencies(con, "lk_tokens")
    for name, where in (
        ("all", "true"),
        ("old", "hash(record_id) % 100 < 40"),
        ("new", "hash(record_id) % 100 >= 40"),
    ):
        con.execute(f"CREATE TEMP TABLE t_{name} AS SELECT * FROM lk_tokens WHERE {where}")
        model.register_input(con, f"t_{name}")
        con.execute(f"CREATE TEMP TABLE lk_{name}_input AS SELECT * FROM lk_model_input")
    return con


def _differences(con) -> tuple[int, int, int, int]:
    """(pairs only Splink scored, pairs only we scored, pairs of both, pairs whose numbers differ)."""
    columns = [r[0] for r in con.execute("DESCRIBE splink_scored").fetchall()]
    assert columns == [r[0] for r in con.execute("DESCRIBE lk_scored").fetchall()]
    differ = " OR ".join(
        f"a.{c} IS DISTINCT FROM b.{c} AND NOT abs(a.{c} - b.{c}) < 1e-9" for c in columns[2:]
    )
    return con.execute(
        f"""SELECT count(*) FILTER (b.record_id_l IS NULL), count(*) FILTER (a.record_id_l IS NULL),
                   count(*) FILTER (a.record_id_l IS NOT NULL AND b.record_id_l IS NOT NULL),
                   count(*) FILTER ({differ})
            FROM splink_scored a FULL JOIN lk_scored b USING (record_id_l, record_id_r)"""
    ).fetchone()


@pytest.mark.parametrize(("tf", "new", "old"), [(True, "all", None), (False, "new", "old")])
def test_own_scoring_equals_splink_prediction(con, tf, new, old):
    """Within one batch (a trained model: term-frequency adjusted) and between old and new records
    (an untrained one: not adjusted)."""
    settings = model.prior_settings(tf=tf)
    settings["probability_two_random_records_match"] = 0.003
    new, old = f"lk_{new}_input", old and f"lk_{old}_input"
    _splink_scores(con, settings, new, old)
    model.score(con, settings, new, old)
    only_splink, only_ours, both, differ = _differences(con)
    assert (only_splink, only_ours, differ) == (0, 0, 0)
    assert both > 300  # every person's two records, and more
    # the comparisons' levels all occur somewhere (else the equality says little about them)
    assert con.execute(
        "SELECT count(DISTINCT mw_given), count(DISTINCT mw_dob) FROM lk_scored"
    ).fetchone() >= (4, 5)
    assert con.execute("SELECT count(*) FROM lk_scored WHERE mw_identifier > 0").fetchone()[0] > 0


def test_fingerprint_changes_with_any_token_even_one_moved_to_another_field():
    """A name moved from the family to the given field (the other one missing) has the same tokens in
    other columns: the md5 of the tokens joined as text (NULLs skipped) did not see it, hash() does.
    The record id is no part of the fingerprint: one record per variant."""
    rows = [  # (id, given, family, birth date)
        ("before", None, "Quarrington", "1960-02-03"),
        ("same", None, "Quarrington", "1960-02-03"),
        ("moved", "Quarrington", None, "1960-02-03"),
        ("other_date", None, "Quarrington", "1960-02-04"),
    ]
    con = duckdb.connect()
    columns = ("source_person_id", "given_name", "family_name", "birth_date")
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    con.register("person_pii", table.append_column("source_system", pa.array(["s"] * len(rows))))
    tokenize(con, KEY)
    prints = dict(con.execute("SELECT split_part(record_id, '|', 2), fingerprint FROM lk_tokens").fetchall())
    assert prints["before"] == prints["same"]
    assert prints["before"] != prints["moved"]
    assert prints["before"] != prints["other_date"]


def test_u_skips_only_comparisons_without_a_value_and_equals_splinks():
    """u estimated with the comparisons whose columns are all empty left out (no email here) equals
    Splink's estimate over every comparison: the empty one keeps its prior u, the others the same u."""
    con = duckdb.connect()
    people = _people()
    con.register("person_pii", people.drop_columns(["email"]))
    tokenize(con, KEY)
    model.term_frequencies(con, "lk_tokens")
    model.register_input(con, "lk_tokens")
    settings = {k: v for k, v in model.prior_settings(tf=True).items() if k not in model.EXTRA_KEYS}
    ours = model._with_u(con, settings)
    linker, _ = model._linker(con, settings)
    linker.training.estimate_u_using_random_sampling(max_pairs=model.U_MAX_PAIRS, seed=model.SEED)
    splink = linker.misc.save_model_to_json()

    def u(model_settings: dict) -> dict[tuple[str, str], float]:
        return {
            (c["output_column_name"], level["label_for_charts"]): level.get("u_probability")
            for c in model_settings["comparisons"]
            for level in c["comparison_levels"]
            if not level.get("is_null_level")
        }

    assert u(ours) == u(splink)
    assert u(ours) != u(settings)  # estimated, not the priors
    assert u(ours)[("email", "exact")] == u(settings)[("email", "exact")]
