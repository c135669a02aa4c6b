"""A record without a birth year between dated records (cluster.hold_bridges): its links to dated records
may reach the birth year of its best such link only, so it never joins two namesakes born in different
years, even when neither has the three records a consensus needs (conflicts.split_conflicts); its links to
every record of that year stay (before, every link but the best was held). And records of a source
declared deduplicated are never joined into one person (conflicts.split_conflicts, 'same_source')."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from rwe_assets.lib.linkage import cluster
from rwe_assets_tests.lib.linkage.test_conflict_clustering import _clusters


def _dated(dob: int) -> tuple:
    """(t_dob, t_ydate, t_yob, t_ssn) of a record born on dob (YYYYMMDD)."""
    return (dob, dob // 10000 * 10000 + 101, dob // 10000, None)


UNDATED = (None, None, None, None)


def test_an_undated_record_joins_every_record_of_its_best_links_year():
    # one person: two dated records the model did not link to each other (a typo in the day), and one
    # record without a birth date linked to both
    records = {"a": _dated(18510727), "b": _dated(18510722), "u": UNDATED}
    clusters, decided = _clusters(
        records, [("a", "u", 12.0, "probabilistic"), ("b", "u", 9.0, "probabilistic")]
    )
    assert len(set(clusters.values())) == 1
    assert decided[("b", "u")] == ("match", None)  # before: held as the undated record's second link


def test_an_undated_record_never_joins_namesakes_of_two_birth_years():
    # William Jones born 1851 (two records), William Jones born 1858 (one), and an undated record of the
    # name linked to all three: the best link says 1851, the link to 1858 is held for review
    records = {"a": _dated(18510727), "c": _dated(18510727), "b": _dated(18580328), "u": UNDATED}
    pairs = [
        ("a", "u", 12.0, "probabilistic"),
        ("c", "u", 11.0, "probabilistic"),
        ("b", "u", 10.0, "probabilistic"),
    ]
    clusters, decided = _clusters(records, pairs)
    assert clusters["u"] == clusters["a"] == clusters["c"] != clusters["b"]
    assert decided[("b", "u")] == ("review", "undated_bridge")
    assert decided[("a", "u")] == decided[("c", "u")] == ("match", None)


def test_the_best_link_decides_the_year():
    # the strongest link is to 1858: the link to the 1851 record waits in review
    records = {"a": _dated(18510727), "b": _dated(18580328), "u": UNDATED}
    pairs = [("a", "u", 8.0, "probabilistic"), ("b", "u", 14.0, "probabilistic")]
    clusters, decided = _clusters(records, pairs)
    assert decided[("a", "u")] == ("review", "undated_bridge") and decided[("b", "u")] == ("match", None)
    assert clusters["u"] == clusters["b"] != clusters["a"]


def test_a_mistyped_year_linked_to_its_person_still_joins_the_undated_record():
    # a (1851) and d (1852, a typo) are one person linked directly; u's link to d would join nothing new
    records = {"a": _dated(18510727), "d": _dated(18520727), "u": UNDATED}
    pairs = [
        ("a", "d", 20.0, "probabilistic"),
        ("a", "u", 12.0, "probabilistic"),
        ("d", "u", 10.0, "probabilistic"),
    ]
    clusters, decided = _clusters(records, pairs)
    assert len(set(clusters.values())) == 1  # the held link (another year than the best) costs nothing
    assert decided[("d", "u")] == ("review", "undated_bridge")


def _linked(deduplicated: tuple[str, ...]) -> tuple[dict, dict]:
    """Two different people of a deduplicated site (a1, a2: same name, no birth date) both matched by
    the one record of site b: connected components with `deduplicated`."""
    con = duckdb.connect()
    records = {"site_a|a1": "site_a", "site_a|a2": "site_a", "site_b|b1": "site_b"}
    con.register(
        "tok",
        pa.table(
            {"record_id": list(records), "source_system": list(records.values())}
            | {c: [None] * 3 for c in ("t_dob", "t_ydate", "t_yob", "t_ssn", "t_email", "t_given_first")}
            | {"t_given_forms": pa.array([None] * 3, pa.list_(pa.int64()))}
            | {"sex": pa.array([None] * 3, pa.string())}
        ),
    )
    con.execute("CREATE TEMP TABLE lk_tokens AS SELECT * FROM tok")
    pairs = [("site_a|a1", "site_b|b1", 14.0), ("site_a|a2", "site_b|b1", 11.0)]
    con.register(
        "prs",
        pa.table(
            {
                "record_id_l": [p[0] for p in pairs],
                "record_id_r": [p[1] for p in pairs],
                "match_weight": [p[2] for p in pairs],
                "match_probability": [1 - 2 ** -p[2] for p in pairs],
                "decision": ["match"] * 2,
                "method": ["probabilistic"] * 2,
            }
        ),
    )
    con.execute("CREATE TEMP TABLE lk_pairs AS SELECT * FROM prs")
    con.execute(
        "CREATE TEMP TABLE lk_clerical_decisions (record_id_l VARCHAR, record_id_r VARCHAR, decision VARCHAR)"
    )
    cluster.connected_components(con, deduplicated)
    clusters = dict(con.execute("SELECT record_id, cluster FROM lk_cluster").fetchall())
    held = dict(con.execute("SELECT record_id_l, hold_reason FROM lk_pairs").fetchall())
    return clusters, held


def test_records_of_a_deduplicated_source_are_never_one_person():
    clusters, held = _linked(("site_a",))
    assert clusters["site_a|a1"] == clusters["site_b|b1"] != clusters["site_a|a2"]  # the stronger link wins
    assert held == {"site_a|a1": None, "site_a|a2": "same_source"}
    clusters, held = _linked(())  # a source not declared deduplicated may hold one person twice
    assert len(set(clusters.values())) == 1 and set(held.values()) == {None}
