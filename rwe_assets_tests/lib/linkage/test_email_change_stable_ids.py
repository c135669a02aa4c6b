"""An email changes over a life, an SSN or a birth date does not (conflicts.STABLE_AGREEMENT): two groups
confirming other emails are one person when they agree on the SSN, or on the full birth date and the
first given name; without that agreement the link between them stays held as conflict_email."""

from __future__ import annotations

from rwe_assets_tests.lib.linkage.test_conflict_clustering import _chain, _clusters

DOB, YDATE, YOB = 19850304, 19850101, 1985


def _era(prefix: str, email: str, ssn: str | None, given: str | None, dob: int | None = DOB) -> dict:
    """Three records of one person in one email era (tokens as lk_tokens holds them)."""
    return {f"{prefix}{i}": (dob, YDATE, YOB, ssn, email, given) for i in range(3)}


def _link(records: dict):
    return _clusters(records, [*_chain("a"), *_chain("b"), ("a2", "b0", 14.0, "deterministic")])


def test_same_ssn_and_birth_date_with_a_new_email_is_one_person():
    clusters, decided = _link(_era("a", "tok-old", "tok-ssn", None) | _era("b", "tok-new", "tok-ssn", None))
    assert len(set(clusters.values())) == 1
    assert decided[("a2", "b0")] == ("match", None)


def test_same_birth_date_and_given_name_without_ssn_is_one_person():
    clusters, decided = _link(_era("a", "tok-old", None, "tok-ann") | _era("b", "tok-new", None, "tok-ann"))
    assert len(set(clusters.values())) == 1 and decided[("a2", "b0")] == ("match", None)


def test_birth_date_alone_or_another_given_name_keeps_the_email_conflict():
    # twins: one birth date, other first names, their own emails
    twins = _era("a", "tok-a", None, "tok-ann") | _era("b", "tok-b", None, "tok-eve")
    clusters, decided = _link(twins)
    assert clusters["a0"] != clusters["b0"] and decided[("a2", "b0")] == ("review", "conflict_email")
    no_name = _era("a", "tok-a", None, None) | _era("b", "tok-b", None, None)
    assert _link(no_name)[1][("a2", "b0")] == ("review", "conflict_email")


def test_an_ssn_agreement_never_waives_a_birth_date_conflict():
    # the waiver is for changeable fields only: other birth dates stay two people
    records = _era("a", "tok-a", "tok-ssn", None, 19850304) | _era("b", "tok-a", "tok-ssn", None, 19860912)
    clusters, decided = _link(records)
    assert clusters["a0"] != clusters["b0"] and decided[("a2", "b0")] == ("review", "conflict_birth_date")
