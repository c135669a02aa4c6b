"""The Fellegi-Sunter model, run by Splink 5 on DuckDB over token and Bloom-similarity columns.

Splink does what we would otherwise write ourselves and test less well: u from random pairs, m by
EM, a model JSON we can keep. It never sees a name or a date: the comparisons (comparisons.py) are SQL
conditions over keyed tokens and keyed Bloom filters. Scoring (score) is one DuckDB query of ours over
the kept model, equal to Splink's prediction and faster (docs/linkage.md, "Matching"). The prior match probability starts from the pairs the deterministic rules find
and is re-estimated from the scored pairs after training (refine_prior); both stay within
prior_bounds(), so a first site without a single duplicate gets a small prior, never 0.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from pathlib import Path

import duckdb
import numpy as np

from rwe_assets.lib import lake
from rwe_assets.lib.linkage import u_sample
from rwe_assets.lib.linkage.comparisons import TF_COLUMNS, bloom_words, comparisons
from rwe_assets.lib.linkage.tokens import BLOOM

log = logging.getLogger(__name__)

# Bumped whenever comparisons (comparisons.py) or token columns change: a kept model of another version is retrained.
MODEL_VERSION = 8
MIN_RECORDS_TO_TRAIN = 500
# Random pairs for u; EM pairs per blocking rule (a bound on training time for large populations).
U_MAX_PAIRS = 2_000_000
EM_MAX_PAIRS = 1_000_000
EM_SAMPLE_ABOVE = 200_000
SEED = 7
M_FLOOR = 0.005
PRIOR_ROUNDS = 200
# Resolution of the Bayes factors refine_prior sums over (log2): a pair's odds move by at most 0.04 %.
PRIOR_BIN_BITS = 0.001
U_FLOOR = 1e-6
# The prior never reaches 0 or 1 (its log odds are taken): at least MIN_MATCHES_PER_RECORD expected
# matches per record (a first site without duplicates still expects some in later batches), at most
# PRIOR_MAX. Deterministic rules are assumed to find PRIOR_RULE_RECALL of the matches.
MIN_MATCHES_PER_RECORD = 0.01
PRIOR_MAX = 0.5
PRIOR_RULE_RECALL = 0.8
# EM learns m from matches: with fewer rule-agreeing pairs than this (a first site, one clean
# source) there are none to learn from, so m keeps its priors and the model is provisional: the next
# run fits it again, once a second source brings matches.
MIN_RULE_PAIRS_FOR_EM = 50

# Candidate pairs. Every rule is an equi-join on tokens, narrow enough that blocks stay small in a
# large population: names come with a birth year or month, a birth date with the city (a common name,
# or a birth date, alone would pair thousands of records at a million).
BLOCKING_RULES = [
    "l.t_dob = r.t_dob AND l.t_city = r.t_city",
    "l.t_ssn = r.t_ssn",
    "l.t_phone = r.t_phone",
    "l.t_email = r.t_email",
    "l.t_email_user = r.t_email_user",
    "l.t_family = r.t_family AND l.t_given_first = r.t_given_first AND l.t_yob = r.t_yob",
    "l.t_street = r.t_street AND l.t_given_first = r.t_given_first",
    "l.t_given = r.t_family AND l.t_family = r.t_given",
    # Passes that need no exact address or identifier, for records with a missing or mistyped birth
    # date or changed names: birth date (or its day/month swap) with the first initial; the name
    # keys, birth date alone, a name with the city, a name with the birth year, postcode with family
    # name, all capped by frequency (tokens.BLOCK_KEY_CAP). Uncapped, postcode with family name grew
    # with the square of the population (146 M of 176 M pairs at 1 M generated records: a common
    # name in a postcode is a block of hundreds). Passes that found almost no true pair no other pass
    # finds were dropped (docs/linkage.md, "Blocking").
    "l.k_dob_init = r.k_dob_init",
    "l.k_dob_swap_init = r.k_dob_init",
    "l.k_names = r.k_names",
    "l.k_sdx_init = r.k_sdx_init",
    "l.k_dob = r.k_dob",
    "l.k_family_city = r.k_family_city",
    "l.k_given_city = r.k_given_city",
    "l.k_sdx_yob = r.k_sdx_yob",
    "l.k_given_yob = r.k_given_yob",
    "l.k_given_yob = r.k_family_yob",
    "l.k_family_yob = r.k_given_yob",
    "l.k_zip_family = r.k_zip_family",
    # Postcode with the call name's initial: a name mistyped, or the family name missing, at the same
    # postcode (postcode with the birth year was measured and dropped: docs/linkage.md, "Blocking").
    "l.k_zip_init = r.k_zip_init",
    # A name as written or one edit apart (the names of this run one edit apart), in either field:
    # with the other name, the city or the postcode; lists capped member by member (tokens.sql). The
    # city and postcode lists also hold the plain name + city / postcode keys, across the fields.
    {"blocking_rule": "l.k_gf_near = r.k_gf_near", "arrays_to_explode": ["k_gf_near"]},
    {"blocking_rule": "l.k_city_near = r.k_city_near", "arrays_to_explode": ["k_city_near"]},
    {"blocking_rule": "l.k_zip_near = r.k_zip_near", "arrays_to_explode": ["k_zip_near"]},
    # An email one typo apart (a shared member of the two deletion neighbourhoods, capped per member).
    {"blocking_rule": "l.t_email_near = r.t_email_near", "arrays_to_explode": ["t_email_near"]},
    # Identifiers (licence, passport, MRN, member id, ...): a shared offered token (tokens.sql), the lists
    # exploded (as Splink's prediction explodes them).
    {"blocking_rule": "l.t_id_offer = r.t_id_offer", "arrays_to_explode": ["t_id_offer"]},
]
# EM rounds: each blocks on fields whose comparisons it therefore cannot train.
EM_BLOCKING_RULES = ["l.t_dob = r.t_dob", "l.t_family = r.t_family AND l.t_given_first = r.t_given_first"]
PRIOR_MATCH_RULES = ["l.k_ssn_dob = r.k_ssn_dob", "l.k_name_dob = r.k_name_dob"]


def prior_settings(tf: bool = False) -> dict:
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_id",
        "probability_two_random_records_match": 0.0001,
        "blocking_rules_to_generate_predictions": [
            r if isinstance(r, dict) else {"blocking_rule": r} for r in BLOCKING_RULES
        ],
        "comparisons": comparisons(tf),
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": [],
        "model_version": MODEL_VERSION,
    }


def term_frequencies(con: duckdb.DuckDBPyConnection, population: str = "lk_tokens") -> None:
    """TEMP TABLE lk_tf_<column> (value, tf_<column>) for each of TF_COLUMNS: the share of `population`'s
    records with a value that hold this one (Splink's definition)."""
    for col in TF_COLUMNS:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE lk_tf_{col} AS SELECT {col}, count(*) / sum(count(*)) OVER () "
            f"AS tf_{col} FROM {population} WHERE {col} IS NOT NULL GROUP BY {col}"
        )


def register_input(con: duckdb.DuckDBPyConnection, tokens: str = "lk_tokens") -> None:
    """TEMP VIEW lk_model_input: the token table with each Bloom filter as word columns bf_<f>_<i> and
    its bit count bf_<f>_n; macro lk_dice(a, b) over two word lists (the household guard). The term
    frequency tables (term_frequencies()) are computed here over `tokens` when not yet registered."""
    known = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    if any(f"lk_tf_{c}" not in known for c in TF_COLUMNS):
        term_frequencies(con, tokens)
    con.execute(
        "CREATE OR REPLACE TEMP MACRO lk_dice(a, b) AS 2.0 * list_sum(list_transform(list_zip(a, b), "
        "w -> bit_count(w[1] & w[2])::INTEGER)) / nullif(list_sum(list_transform(a, w -> bit_count(w)::INTEGER)) "
        "+ list_sum(list_transform(b, w -> bit_count(w)::INTEGER)), 0)"
    )
    words = ", ".join(f"bf_{f}[{i + 1}] AS bf_{f}_{i}" for f in BLOOM for i in range(bloom_words(f)))
    counts = ", ".join(
        f"({' + '.join(f'bit_count(bf_{f}[{i + 1}])::INTEGER' for i in range(bloom_words(f)))}) AS bf_{f}_n"
        for f in BLOOM
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW lk_model_input AS SELECT * EXCLUDE ({', '.join(f'bf_{f}' for f in BLOOM)}), "
        f"{words}, {counts} FROM {tokens}"
    )


EXTRA_KEYS = ("trained", "provisional", "prior_from_rules", "model_version")  # ours, not Splink's


def _linker(con: duckdb.DuckDBPyConnection, settings: dict, table: str = "lk_model_input"):
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    frame = db_api.register(table)
    linker = Linker(frame, copy.deepcopy(settings), log_level=logging.WARNING)
    # Splink would count frequencies in the table it is given (the new records alone when scoring a
    # batch against the index); ours are over the whole run's population.
    for col in TF_COLUMNS:
        lookup = db_api.register(f"lk_tf_{col}", table_name=f"lk_tf_{col}_splink")
        linker.table_management.register_term_frequency_lookup(lookup, col)
    return linker, db_api


def prior_bounds(records: int) -> tuple[float, float]:
    """(floor, ceiling) of the prior match probability for `records` records."""
    total = records * (records - 1) / 2
    if total <= 0:
        return PRIOR_MAX, PRIOR_MAX
    return min(MIN_MATCHES_PER_RECORD * records / total, PRIOR_MAX), PRIOR_MAX


def rule_pairs(con: duckdb.DuckDBPyConnection, table: str = "lk_model_input") -> int:
    """Distinct record pairs agreeing on a deterministic rule (PRIOR_MATCH_RULES)."""
    union = " UNION ".join(
        f"SELECT l.record_id AS a, r.record_id AS b FROM {table} l JOIN {table} r ON {rule} "
        "AND l.record_id < r.record_id"
        for rule in PRIOR_MATCH_RULES
    )
    return con.execute(f"SELECT count(*) FROM ({union})").fetchone()[0]


def rule_prior(rule_agreeing: int, records: int) -> float:
    """Prior from the deterministic rules' pairs (assumed PRIOR_RULE_RECALL of the matches), bounded."""
    low, high = prior_bounds(records)
    total = records * (records - 1) / 2
    estimate = rule_agreeing / PRIOR_RULE_RECALL / total if total > 0 else high
    return min(max(estimate, low), high)


def train(con: duckdb.DuckDBPyConnection, records: int) -> dict:
    """Model settings with m/u trained on lk_model_input (EM), or the priors for a small population.
    Without enough rule-agreeing pairs to learn m (see MIN_RULE_PAIRS_FOR_EM) only u is estimated and
    the model is marked provisional."""
    if records < MIN_RECORDS_TO_TRAIN:
        return {**prior_settings(), "trained": False}
    settings = prior_settings(tf=True)
    agreeing = rule_pairs(con)
    settings["probability_two_random_records_match"] = rule_prior(agreeing, records)
    linker, _ = _linker(con, _with_u(con, {k: v for k, v in settings.items() if k not in EXTRA_KEYS}))
    provisional = agreeing < MIN_RULE_PAIRS_FOR_EM
    if not provisional:
        # Splink samples EM pairs only when asked to; small populations train on every blocked pair.
        cap = EM_MAX_PAIRS if records > EM_SAMPLE_ABOVE else None
        for rule in EM_BLOCKING_RULES:
            _em_round(linker, rule, cap)
    trained = linker.misc.save_model_to_json()
    for comparison in trained["comparisons"]:
        _floor(comparison["comparison_levels"])
    trained["trained"] = True
    trained["provisional"] = provisional
    trained["model_version"] = MODEL_VERSION
    return trained


def _with_u(con: duckdb.DuckDBPyConnection, settings: dict) -> dict:
    """`settings` with u estimated by Splink on U_MAX_PAIRS random pairs of lk_model_input (seed SEED).
    Splink estimates u comparison by comparison, each on up to all the sampled pairs; a comparison none
    of whose columns holds a value puts every pair at its null level and keeps its prior u, so it is
    left out (email and identifiers of one Synthea site: a fifth of the u time). A level no sampled
    pair reached is "not observed": Splink then uses 1e-6, written here as such. Splink runs on its own
    sample of records, taken here (u_sample.py) so that list overlaps can be looked up."""
    present = {r[0] for r in con.execute("DESCRIBE SELECT * FROM lk_model_input").fetchall()}
    columns = sorted(_level_columns(settings) & present)
    counts = con.execute(f"SELECT {', '.join(f'count({c})' for c in columns)} FROM lk_model_input").fetchone()
    filled = {c for c, n in zip(columns, counts, strict=True) if n}
    estimate = [c for c in settings["comparisons"] if _level_columns({"comparisons": [c]}) & filled]
    if not estimate:
        return settings
    sampled = u_sample.sample(con, settings, U_MAX_PAIRS, SEED)
    fast = u_sample.overlap_lookups(con, estimate, sampled)
    linker, _ = _linker(con, {**settings, "comparisons": fast}, table="lk_u_sample")
    # every pair of the sample, as Splink would have sampled them: its sample of the sample is all of it
    linker.training.estimate_u_using_random_sampling(max_pairs=max(sampled * (sampled + 1) / 2, 1), seed=SEED)
    estimated = {c["output_column_name"]: c for c in linker.misc.save_model_to_json()["comparisons"]}
    for original in estimate:
        levels = estimated[original["output_column_name"]]["comparison_levels"]
        for level, source in zip(levels, original["comparison_levels"], strict=True):
            level["sql_condition"] = source["sql_condition"]  # the lookups were only for the sample
            if not level.get("is_null_level"):
                level.setdefault("u_probability", 1e-6)
    con.execute("DROP TABLE lk_u_sample")
    return {
        **settings,
        "comparisons": [estimated.get(c["output_column_name"], c) for c in settings["comparisons"]],
    }


def _em_round(linker, rule: str, cap: int | None) -> None:
    """One EM round blocked on `rule`. On clean data a level reached only by non-matches (the "else"
    of birth dates among records of one name) sees its m shrink geometrically until it underflows
    to 0, which Splink refuses (ValueError); the round is then dropped and m keeps the values of the
    rounds before (floored afterwards), rather than failing the run."""
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=cap)
    except ValueError as error:
        if "below the minimum allowed value" not in str(error):
            raise
        log.warning("linkage EM round blocked on %s dropped: an m probability underflowed to 0", rule)


def refine_prior(
    con: duckdb.DuckDBPyConnection, settings: dict, records: int, scored: str = "lk_scored"
) -> dict:
    """The prior match probability re-estimated from the data, and `scored` rescored with it.

    Splink's estimate from the deterministic rules assumes they find a fixed share (0.8) of the
    matches; on noisy data they find far fewer and the prior comes out too low. With m and u trained,
    the prior is the share of all record pairs that are matches: the fixed point of
    lambda = sum of match probabilities (under lambda) over the scored pairs / all pairs, i.e. EM on
    the mixing weight alone, pairs outside the blocking counted as non-matches (they nearly all are).
    """
    total = records * (records - 1) / 2
    old = settings["probability_two_random_records_match"]
    if not settings.get("trained") or total <= 0:
        return settings
    low, high = prior_bounds(records)
    # log2 Bayes factor of each pair = match_weight - prior weight used when scoring. Pairs are counted
    # per Bayes factor rounded to PRIOR_BIN_BITS in DuckDB and the fixed point iterated over the bins:
    # every pair's factor fetched into numpy is tens of millions of values at a million records, and
    # the iteration makes several copies of it.
    bayes = f"(match_weight - {math.log2(old / (1 - old))})"
    bins = con.execute(
        f"SELECT round(least({bayes}, 1000) / {PRIOR_BIN_BITS}) * {PRIOR_BIN_BITS} AS b, count(*) AS n "
        f"FROM {scored} WHERE match_weight IS NOT NULL GROUP BY ALL"
    ).fetchnumpy()
    factors, counts = bins["b"], bins["n"].astype(np.float64)
    lam = old
    for _ in range(PRIOR_ROUNDS):
        # P(match | pair, lambda) = 1 / (1 + 2^-(log2 Bayes factor + log2 prior odds))
        posterior = 1 / (1 + np.exp2(-np.clip(factors + math.log2(lam / (1 - lam)), -1000, 1000)))
        new = min(max(float(counts @ posterior) / total, low), high)
        converged = abs(new - lam) <= 1e-4 * lam
        lam = new
        if converged:
            break
    weight = math.log2(lam / (1 - lam))
    con.execute(
        f"UPDATE {scored} SET match_weight = {bayes} + {weight}, "
        f"match_probability = 1 / (1 + pow(2, -({bayes} + {weight})))"
    )
    return {**settings, "probability_two_random_records_match": lam, "prior_from_rules": old}


def _floor(levels: list[dict]) -> None:
    """EM can drive a level's m to 0 (never seen among matches, e.g. a changed phone number in a small
    population): its weight would be minus infinity and one disagreement would veto any match. m and u
    are floored (M_FLOOR, U_FLOOR) and renormalized."""
    for name, floor in (("m_probability", M_FLOOR), ("u_probability", U_FLOOR)):
        scored = [level for level in levels if not level.get("is_null_level")]
        values = [max(level.get(name) or floor, floor) for level in scored]
        total = sum(values)
        for level, value in zip(scored, values, strict=True):
            level[name] = value / total


def score(
    con: duckdb.DuckDBPyConnection, settings: dict, new_table: str, old_table: str | None = None
) -> duckdb.DuckDBPyRelation:
    """Scored candidate pairs within `new_table` and, if given, between `old_table` and it:
    record_id_l, record_id_r (ordered), match_weight, match_probability, mw_<comparison> (the
    comparison's match weight without its term-frequency adjustment).

    The model's own Splink settings, evaluated in one DuckDB query (Splink's predict_within and
    predict_between give the same pairs and weights: test_linkage_speed_paths.py). Splink blocks rule by
    rule, excluding every earlier rule's pairs inside each join, and carries every column of both
    records through its pipeline; here the pairs are a union of plain equi-joins on integer ids, and
    the records' columns are joined once, only those the comparison levels read."""
    _score_records(con, settings, new_table, old_table)
    _candidate_pairs(con, settings)
    con.execute(f"CREATE OR REPLACE TEMP TABLE lk_scored AS {scoring_sql(settings)}")
    con.execute("DROP TABLE lk_sc_pairs; DROP TABLE lk_sc_records")
    return con.sql("SELECT * FROM lk_scored")


def _columns(sql: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, sql))


def _level_columns(settings: dict) -> set[str]:
    """Input columns the comparison levels read (`<column>_l` / `<column>_r` in their conditions)."""
    conditions = " ".join(
        lv["sql_condition"] for c in settings["comparisons"] for lv in c["comparison_levels"]
    )
    return _columns(conditions, r"\b(\w+)_[lr]\b")


def _tf_columns(settings: dict) -> list[str]:
    return sorted(
        {lv.get("tf_adjustment_column") for c in settings["comparisons"] for lv in c["comparison_levels"]}
        - {None}
    )


def _score_records(con, settings: dict, new_table: str, old_table: str | None) -> None:
    """TEMP TABLE lk_sc_records: the records to compare, numbered in record_id order (rid), `new` for
    those of new_table, with the columns the levels and the blocking rules read and each term-frequency
    column's value's frequency (tf_<column>, from the lk_tf_<column> tables)."""
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {new_table}").fetchall()}
    rules = " ".join(_rule(r)[0] for r in settings["blocking_rules_to_generate_predictions"])
    used = sorted(((_level_columns(settings) | _columns(rules, r"\b[lr]\.(\w+)")) & present) - {"record_id"})
    rows = f"SELECT record_id, true AS new, {', '.join(used)} FROM {new_table}"
    if old_table is not None:
        rows += f" UNION ALL SELECT record_id, false, {', '.join(used)} FROM {old_table}"
    tf = _tf_columns(settings)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE lk_sc_records AS
        SELECT (row_number() OVER (ORDER BY x.record_id))::INTEGER AS rid, x.*,
               {", ".join(f"tf_{c}.tf_{c}" for c in tf) or "NULL AS no_tf"}
        FROM ({rows}) x {" ".join(f"LEFT JOIN lk_tf_{c} tf_{c} ON tf_{c}.{c} = x.{c}" for c in tf)}"""
    )


def _rule(rule: str | dict) -> tuple[str, list[str]]:
    """(SQL condition, array columns to explode) of a blocking rule in Splink's settings."""
    if isinstance(rule, str):
        return rule, []
    return rule["blocking_rule"], list(rule.get("arrays_to_explode") or [])


def _candidate_pairs(con, settings: dict) -> None:
    """TEMP TABLE lk_sc_pairs (rid_l, rid_r): the distinct pairs some blocking rule holds for, new
    records among themselves (lower record_id left, as Splink's dedupe) and old (left) with new.
    A rule with arrays to explode joins on their elements, like Splink's."""
    selects = []
    for rule in settings["blocking_rules_to_generate_predictions"]:
        condition, arrays = _rule(rule)
        side = "(SELECT * FROM lk_sc_records)"
        if arrays:
            # only the columns the rule reads are exploded (an email's neighbourhood is ~25 members, and
            # every other column repeated per member cost more than the join)
            read = sorted(_columns(condition, r"\b[lr]\.(\w+)"))
            side = f"(SELECT rid, new, {', '.join(read)} FROM lk_sc_records)"
        for array in arrays:
            side = f"(SELECT * REPLACE (unnest({array}) AS {array}) FROM {side})"
        selects.append(
            f"SELECT l.rid AS rid_l, r.rid AS rid_r FROM {side} l JOIN {side} r ON ({condition}) "
            "AND r.new AND (NOT l.new OR l.rid < r.rid)"
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE lk_sc_pairs AS {' UNION '.join(selects)}")


def scoring_sql(settings: dict) -> str:
    """SELECT of the scored pairs of lk_sc_pairs over lk_sc_records, as Splink's prediction computes
    them: each comparison's level (gamma_<name>), its weight (mw_<name>), the term-frequency adjustment
    of adjusted levels (mw_tf_adj_<name>), and the prior's weight plus all of these, summed in Splink's
    order, as match_weight."""
    used = sorted(_level_columns(settings) | {f"tf_{c}" for c in _tf_columns(settings)})
    sides = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in used)
    parts = [_comparison_sql(c) for c in settings["comparisons"]]
    prior = settings["probability_two_random_records_match"]
    total = " + ".join(
        [f"{math.log2(prior / (1 - prior))!r}::DOUBLE", *(t for _, _, terms in parts for t in terms)]
    )
    names = ", ".join(f"mw_{c['output_column_name']}" for c in settings["comparisons"])
    return f"""
    WITH vectors AS (
        SELECT least(l.record_id, r.record_id) AS record_id_l, greatest(l.record_id, r.record_id) AS record_id_r,
               {sides}
        FROM lk_sc_pairs p JOIN lk_sc_records l ON l.rid = p.rid_l JOIN lk_sc_records r ON r.rid = p.rid_r
    ),
    gammas AS (SELECT *, {", ".join(gamma for gamma, _, _ in parts)} FROM vectors),
    weights AS (SELECT *, {", ".join(w for _, weights, _ in parts for w in weights)} FROM gammas),
    totals AS (SELECT record_id_l, record_id_r, {names}, {total} AS match_weight FROM weights)
    SELECT record_id_l, record_id_r, match_weight,
           CASE WHEN match_weight >= 0 THEN 1.0 / (1.0 + pow(2::DOUBLE, -match_weight))
                ELSE pow(2::DOUBLE, match_weight) / (1.0 + pow(2::DOUBLE, match_weight)) END AS match_probability,
           {names}
    FROM totals
    """


def _comparison_sql(comparison: dict) -> tuple[str, list[str], list[str]]:
    """(gamma expression, weight expressions, weight columns to sum) of one comparison. Splink numbers
    the levels in order: the null level -1, the others counting down to 0 (the last, usually ELSE)."""
    name, levels = comparison["output_column_name"], comparison["comparison_levels"]
    value = sum(not lv.get("is_null_level") for lv in levels)
    cases, weights, adjustments = [], [], []
    for level in levels:
        is_else = level["sql_condition"].strip().upper() == "ELSE"
        if level.get("is_null_level"):
            cvv = -1
        else:
            value -= 1
            cvv = value
        cases.append(f"ELSE {cvv}" if is_else else f"WHEN {level['sql_condition']} THEN {cvv}")
        weights.append(f"WHEN {cvv} THEN {_level_weight(level)!r}::DOUBLE")
        if level.get("tf_adjustment_column") and cvv != -1 and not is_else:
            adjustments.append(f"WHEN {cvv} THEN {_tf_sql(level)}")
    exprs = [f"CASE gamma_{name} {' '.join(weights)} END AS mw_{name}"]
    terms = [f"mw_{name}"]
    if adjustments:
        exprs.append(f"CASE gamma_{name} {' '.join(adjustments)} ELSE 0::DOUBLE END AS mw_tf_adj_{name}")
        terms.append(f"mw_tf_adj_{name}")
    return f"CASE {' '.join(cases)} END AS gamma_{name}", exprs, terms


def _level_weight(level: dict) -> float:
    """Splink's match weight of a level: 0 for the null level, else log2(m/u) (m, u at least 1e-300)."""
    if level.get("is_null_level"):
        return 0.0
    return math.log2(max(level["m_probability"], 1e-300) / max(level["u_probability"], 1e-300))


def _tf_sql(level: dict) -> str:
    """Splink's term-frequency adjustment of a level (the level's own u is its base: levels set
    disable_tf_exact_match_detection)."""
    col = level["tf_adjustment_column"]
    weight = level.get("tf_adjustment_weight", 1.0)
    if weight == 0:
        return "0::DOUBLE"
    either, other = f"coalesce(tf_{col}_l, tf_{col}_r)", f"coalesce(tf_{col}_r, tf_{col}_l)"
    floor = float(level.get("tf_minimum_u_value", 0.0))
    return (
        f"CASE WHEN {either} IS NOT NULL THEN {float(weight)!r}::DOUBLE * ({math.log2(level['u_probability'])!r}::DOUBLE "
        f"- log2(greatest({either}, {other}, {floor!r}::DOUBLE))) ELSE 0::DOUBLE END"
    )


def save(settings: dict, path: Path) -> None:
    lake.write_text(path, json.dumps(settings, indent=2, sort_keys=True))


def load(path: Path) -> dict | None:
    text = lake.read_text(path)
    return json.loads(text) if text is not None else None
