"""Conflict-aware clustering on email (conflicts.split_conflicts): two groups each confirming another email
by three records are two people, however strong the one link between them (fake_20000: two Jack Smiths
born days apart, j.s27@... and js@..., joined by one record without an email); a shared family email,
or an email one record states, never splits a person."""

from __future__ import annotations

from rwe_assets_tests.lib.linkage.test_conflict_clustering import _chain, _clusters


def _group(prefix: str, email: str | None, n: int = 3) -> dict[str, tuple]:
    """n records of one person born in 1985 (no full date in common), stating `email`."""
    return {f"{prefix}{i}": (None, None, 1985, None, email) for i in range(n)}


def test_a_link_between_groups_confirming_other_emails_is_held():
    records = _group("a", "tok-j.s27") | _group("b", "tok-js")
    clusters, decided = _clusters(records, [*_chain("a"), *_chain("b"), ("a2", "b0", 6.0, "probabilistic")])
    assert clusters["a0"] == clusters["a2"] and clusters["b0"] == clusters["b2"]
    assert clusters["a0"] != clusters["b0"]
    assert decided[("a2", "b0")] == ("review", "conflict_email")


def test_one_shared_email_or_one_other_email_keeps_one_person():
    # a household's address on both sides: no conflict
    shared = _group("a", "tok-family") | _group("b", "tok-family")
    clusters, _ = _clusters(shared, [*_chain("a"), *_chain("b"), ("a2", "b0", 6.0, "probabilistic")])
    assert len(set(clusters.values())) == 1
    # two records with another email (a new address at one site) are no consensus: they join
    moved = _group("a", "tok-old") | _group("b", "tok-new", n=2)
    clusters, decided = _clusters(moved, [*_chain("a"), *_chain("b", 2), ("a2", "b0", 6.0, "probabilistic")])
    assert len(set(clusters.values())) == 1 and decided[("a2", "b0")] == ("match", None)
