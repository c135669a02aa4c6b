"""Conflict-aware clustering (conflicts.split_conflicts): a weak link never joins two groups of records
that each agree on another birth date, birth year or SSN, nor two records a reviewer kept apart; and a
reviewer's decision on a pair no longer scored still applies (cluster.add_decided_pairs)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
from deltalake import write_deltalake

from rwe_assets.lib import lake
from rwe_assets.lib.linkage import cluster
from rwe_assets.lib.linkage.review import DECISIONS_SCHEMA
from rwe_assets_tests.lib.linkage.test_review import BASE, ROWS, export, relink, stage

PAIR_COLUMNS = ("record_id_l", "record_id_r", "match_weight", "match_probability", "decision", "method")


def _clusters(records: dict[str, tuple], pairs: list[tuple], non_match: list[tuple] = ()):
    """Run connected_components on hand-made tables: records id -> (t_dob, t_ydate, t_yob, t_ssn[, t_email[, t_given_first[, t_given_forms[, sex]]]]),
    pairs (l, r, weight, method). Returns ({record: cluster}, {(l, r): (decision, hold_reason)})."""
    con = duckdb.connect()
    ids = sorted(records)
    columns = ("t_dob", "t_ydate", "t_yob", "t_ssn", "t_email", "t_given_first", "t_given_forms", "sex")
    filled = {i: (*records[i], *[None] * (len(columns) - len(records[i]))) for i in ids}
    types = {"t_given_forms": pa.list_(pa.int64()), "sex": pa.string()}
    con.register(
        "tok",
        pa.table(
            {"record_id": ids}
            | {c: pa.array([filled[i][k] for i in ids], types.get(c)) for k, c in enumerate(columns)}
        ),
    )
    con.execute("CREATE TEMP TABLE lk_tokens AS SELECT * FROM tok")
    rows = [(min(a, r), max(a, r), w, 1 - 2**-w, "match", m) for a, r, w, m in pairs]
    con.register("prs", pa.table({c: [row[k] for row in rows] for k, c in enumerate(PAIR_COLUMNS)}))
    con.execute("CREATE TEMP TABLE lk_pairs AS SELECT * FROM prs")
    con.execute(
        "CREATE TEMP TABLE lk_clerical_decisions (record_id_l VARCHAR, record_id_r VARCHAR, decision VARCHAR)"
    )
    for a, b in non_match:
        con.execute("INSERT INTO lk_clerical_decisions VALUES (?, ?, 'non_match')", [min(a, b), max(a, b)])
    cluster.connected_components(con)
    clusters = dict(con.execute("SELECT record_id, cluster FROM lk_cluster").fetchall())
    decided = {
        (a, b): (d, h)
        for a, b, d, h in con.execute(
            "SELECT record_id_l, record_id_r, decision, hold_reason FROM lk_pairs"
        ).fetchall()
    }
    return clusters, decided


def _group(prefix: str, dob: int, n: int = 3, ssn: int | None = None) -> dict[str, tuple]:
    """n records of one person agreeing on a full birth date (token dob, year token dob // 10000)."""
    return {f"{prefix}{i}": (dob, dob // 10000 * 10000 + 101, dob // 10000, ssn) for i in range(n)}


def _chain(prefix: str, n: int = 3) -> list[tuple]:
    return [(f"{prefix}{i}", f"{prefix}{i + 1}", 20.0, "probabilistic") for i in range(n - 1)]


def test_a_weak_link_between_namesakes_born_on_other_dates_is_held():
    # two people of one name, three records each with their own birth date, linked by one weaker pair
    records = _group("a", 18500310) | _group("b", 18501122)
    clusters, decided = _clusters(records, [*_chain("a"), *_chain("b"), ("a2", "b0", 8.0, "probabilistic")])
    assert clusters["a0"] == clusters["a2"] and clusters["b0"] == clusters["b2"]
    assert clusters["a0"] != clusters["b0"]
    assert decided[("a2", "b0")] == ("review", "conflict_birth_date")  # held, visible in review


def test_one_record_with_another_date_is_a_typo_and_joins():
    # a single record never has a consensus: a mistyped date joins the group it matches
    records = _group("a", 18500310) | {"x": (18500301, 18500101, 1850, None)}
    clusters, decided = _clusters(records, [*_chain("a"), ("a2", "x", 9.0, "probabilistic")])
    assert len(set(clusters.values())) == 1 and decided[("a2", "x")] == ("match", None)


def test_years_and_ssns_that_groups_agree_on_conflict_too():
    # 1 January dates (year-only) of other years; then one birth date with two SSNs
    years = _group("a", 18530101) | _group("b", 18550101)
    clusters, decided = _clusters(years, [*_chain("a"), *_chain("b"), ("a0", "b0", 6.0, "probabilistic")])
    assert clusters["a0"] != clusters["b0"] and decided[("a0", "b0")][1] == "conflict_birth_year"
    ssns = _group("a", 19700517, ssn=1) | _group("b", 19700517, ssn=2)
    clusters, decided = _clusters(ssns, [*_chain("a"), *_chain("b"), ("a0", "b0", 6.0, "deterministic")])
    assert clusters["a0"] != clusters["b0"] and decided[("a0", "b0")][1] == "conflict_ssn"


def test_the_strongest_links_decide_which_group_a_record_joins():
    # x matches both groups; its stronger link (to b) is taken first, the weaker one is held
    records = _group("a", 18500310) | _group("b", 18501122) | {"x": (None, None, 1850, None)}  # x: born 1850
    pairs = [
        *_chain("a"),
        *_chain("b"),
        ("a0", "x", 7.0, "probabilistic"),
        ("b0", "x", 12.0, "probabilistic"),
    ]
    clusters, decided = _clusters(records, pairs)
    assert clusters["x"] == clusters["b0"] != clusters["a0"]
    assert decided[("a0", "x")] == ("review", "conflict_birth_date")


def test_a_reviewer_non_match_separates_records_chained_through_a_third():
    # a ~ c ~ b: the reviewer kept a and b apart; before, only the pair's own link was removed
    records = {k: (None, None, None, None) for k in ("a", "b", "c")}
    pairs = [("a", "c", 10.0, "probabilistic"), ("b", "c", 9.0, "probabilistic")]
    clusters, decided = _clusters(records, pairs, non_match=[("a", "b")])
    assert clusters["a"] != clusters["b"] and clusters["c"] == clusters["a"]
    assert decided[("b", "c")] == ("review", "reviewer_non_match")


def test_a_reviewer_match_is_never_held():
    records = _group("a", 18500310) | _group("b", 18501122)
    pairs = [*_chain("a"), *_chain("b"), ("a2", "b0", 1.0, "clerical")]
    clusters, decided = _clusters(records, pairs)
    assert clusters["a0"] == clusters["b0"] and decided[("a2", "b0")] == ("match", None)


# A record far from its partner: no blocking rule pairs them (other names, date, address, no phone).
OTHER = {
    **BASE, "given_name": "Zebedee", "family_name": "Quarrington", "birth_date": "1931-02-08", "sex": "M",
    "address_line": "9 Far Lane", "zip": "99501", "phone": None,
}  # fmt: skip


def _decide(lake_dir, decisions: list[tuple]) -> None:
    now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    rows = [
        {"record_id_l": min(a, b), "record_id_r": max(a, b), "decision": d, "decided_at": now,
         "decided_by": "test", "note": None, "pair_id": None, "match_probability": None,
         "review_file_sha256": None}
        for a, b, d in decisions
    ]  # fmt: skip
    path = lake.table_path(lake_dir, "linkage", "clerical_decisions")
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema=DECISIONS_SCHEMA), mode="append")


def test_a_decision_on_a_pair_no_longer_scored_still_applies(tmp_path):
    # the reviewer matched site_a|a with payer|p; p's record then changed beyond any blocking rule
    stage(tmp_path, [
        {**BASE, "source_system": "site_a", "source_person_id": "a"},
        {**OTHER, "source_system": "payer", "source_person_id": "p"},
        {**OTHER, "given_name": "Ptolemy", "source_system": "payer", "source_person_id": "q"},
    ])  # fmt: skip
    _decide(tmp_path, [("site_a|a", "payer|p", "match"), ("payer|p", "payer|q", "non_match")])
    persons = relink(tmp_path)
    assert persons[("site_a", "a")]["person_id"] == persons[("payer", "p")]["person_id"]
    assert persons[("payer", "p")]["match_method"] == "clerical"
    assert persons[("payer", "q")]["person_id"] != persons[("payer", "p")]["person_id"]
    pairs = lake.read_table(lake.table_path(tmp_path, "linkage", "pairs")).to_pylist()
    kept = {(p["record_id_l"], p["record_id_r"]): (p["decision"], p["method"]) for p in pairs}
    assert kept[("payer|p", "site_a|a")] == ("match", "clerical")
    assert kept[("payer|p", "payer|q")] == ("non_match", "clerical")  # kept visible in pairs
    metrics = lake.read_table(lake.table_path(tmp_path, "linkage", "metrics")).to_pylist()
    counted = {m["metric"]: m["value"] for m in metrics if m["dimension"] == ""}
    assert counted["pairs_decided_not_scored"] == 1  # a-p; p-q shares name, date and address: scored


def test_the_review_export_says_why_clustering_held_a_pair(tmp_path):
    # the export has a hold_reason column: empty for pairs the model itself sent to review
    stage(tmp_path, ROWS)
    relink(tmp_path)
    exported = export(tmp_path, tmp_path / "pending.csv")
    assert exported and all("hold_reason" in row and row["hold_reason"] == "" for row in exported)
